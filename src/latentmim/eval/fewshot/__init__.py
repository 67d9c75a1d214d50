"""Few-shot logistic regression: ``suite`` (``latentmim eval fewshot``) and its datasets (``data``)."""
