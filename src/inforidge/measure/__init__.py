"""Stage 5, measurement: states + estimators -> tidy rows."""
