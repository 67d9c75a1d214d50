"""Named Hydra configurations (YAML diffs on top of :class:`PretrainConfig`)."""
