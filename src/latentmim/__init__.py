"""latentmim: Latent Masked Image Modeling and relatives."""

__version__ = "0.1.0"
