"""Fine-tuning: ``suite`` (``latentmim eval finetune``) on timm's ViT, with token drop and its parts."""
