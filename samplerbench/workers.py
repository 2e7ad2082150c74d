"""Worker processes of a run: the decoding pool and the DataLoaders that read the frame store.

Every worker forks from a ``forkserver`` that has already imported torch and the decoders, so a worker starts
in milliseconds after the first, and a crashed decoder leaves no inherited locks behind. Each worker runs
one intra-op thread: the workers themselves are the parallelism.
"""

from __future__ import annotations

import multiprocessing

import torch

PRELOAD = ["samplerbench.decode"]


def init_worker(*_worker_id: int) -> None:
    """``initializer`` / ``worker_init_fn`` of every worker process."""
    torch.set_num_threads(1)


def context() -> multiprocessing.context.BaseContext:
    """The start method of every worker process of a run."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx
