"""Training: pipeline specs, trainers, and the context a trainer talks to."""
