"""Stage 6, results: pure pandas. The results table on disk and summaries of it."""
