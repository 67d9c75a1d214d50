"""Interoperability: checkpoints in (ours, the Latent MIM authors', MAE's, timm exports) and out.

* :func:`~latentmim.interop.load.load_encoder` -- the one way to get an encoder from a file or
  folder; :func:`~latentmim.interop.load.load_pretrained` adds its provenance and config.
* :func:`~latentmim.interop.init_from.init_weights` -- start training from such a checkpoint.
* :func:`~latentmim.interop.timm_export.export_encoder` -- a timm-loadable folder.
"""
