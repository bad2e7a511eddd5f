"""Stage 7, reports: figures and report.md, built from result tables."""
