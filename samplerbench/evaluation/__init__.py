"""Scoring samplers: the evaluator (metrics, GFLOPs, timed throughput), the result values, the protocol card."""
