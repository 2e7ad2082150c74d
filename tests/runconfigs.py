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


def micro(*, samplers: list[str] | None, budgets: tuple[int, ...] = (2,)) -> str:
    """The config file of a micro run: ``samplers`` (``None``: every registered one) on 2 classes, 4 frames, one
    epoch of each network, the largest of ``budgets`` the main one: seconds."""
    return (f"samplers = {samplers!r}\n" if samplers is not None else "") + f"""
tables = ["main"]
frames = 4
budgets = {list(budgets)!r}
main_budget = {max(budgets)}
rec_epochs = 1
fem_epochs = 1
sampler_epochs = 2
throughput_iters = 1
bootstrap = 20
""" + MICRO_DATA


MICRO = micro(samplers=["uniform", "nsnet"])  # uniform and NSNet
