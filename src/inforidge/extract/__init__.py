"""Stage 3, extraction: forward passes -> state tensors. No estimator lives here."""
