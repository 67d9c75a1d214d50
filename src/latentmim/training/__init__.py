"""The training kit shared by pre-training and the evaluation heads: optimiser, schedules,
mixed precision, gradient checks, and the error a diverged run raises."""
