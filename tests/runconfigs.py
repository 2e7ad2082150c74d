"""Config files of the slow end-to-end tests: the smallest runs that still go through every stage."""

from __future__ import annotations

MICRO_DATA = """
[synthetic]
num_classes = 2
train_per_class = 3
val_per_class = 2
min_frames = 6
max_frames = 12
width = 64
height = 48
"""

# uniform and NSNet on 2 classes, 4 frames, one epoch of each network: seconds
MICRO = """
samplers = ["uniform", "nsnet"]
tables = ["main"]
frames = 4
budgets = [2]
main_budget = 2
rec_epochs = 1
fem_epochs = 1
sampler_epochs = 2
throughput_iters = 1
bootstrap = 20
""" + MICRO_DATA
