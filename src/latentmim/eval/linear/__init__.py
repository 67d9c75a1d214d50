"""Linear probe: ``suite`` (``latentmim eval linear``), its head, LARS from timm and feature caching."""
