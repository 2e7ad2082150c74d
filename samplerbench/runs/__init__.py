"""Whole jobs, top to bottom: a benchmark run, a trained sampler on new videos (select), the self-check (doctor)."""
