"""Writing results: one run's Markdown, CSV, JSON and plots, and the comparison of several runs. Runs no stage."""
