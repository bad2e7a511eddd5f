"""Stage 2, models: load, name, check and edit models reversibly."""
