"""Run plumbing: processes and devices, checkpoints written atomically, the run lock, logging,
progress and timing. Nothing here knows which model is trained."""
