"""Dense evaluations on patch features: segmentation (``segment``) and DAVIS video propagation (``video``)."""
