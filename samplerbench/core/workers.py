"""Worker processes of a run: the decoding pool and the DataLoaders that read the frame store. Workers fork
from a ``forkserver`` with torch preloaded, run one intra-op thread each and die with the run."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing import forkserver

import torch

PRELOAD = ["samplerbench.stages.decode"]
# A worker count: no worker process, the caller reads its items itself (held-out batches, frames already in memory).
# A run's count is its config's ``workers`` (default :func:`~samplerbench.core.distributed.local_cores`).
IN_PROCESS = 0


def _die_with_main() -> None:
    """End this worker process when the process that started it ends, however it ends (SIGKILL and OOM included).

    Surprise: under forkserver a worker's parent is the fork server, which ends only when every copy of its
    "alive" pipe closes; so the worker closes its copy and arms Linux's parent-death signal. A thread watching
    the main process's sentinel covers other platforms and a death before the signal was armed."""
    main = multiprocessing.parent_process()
    if main is None:
        return
    server = forkserver._forkserver
    if server._forkserver_alive_fd is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    if sys.platform == "linux":
        pr_set_pdeathsig = 1  # <linux/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)

    def exit_when_main_ends() -> None:
        main.join()
        os._exit(1)

    threading.Thread(target=exit_when_main_ends, name="die-with-main", daemon=True).start()


def init_worker(*_worker_id: int) -> None:
    """``initializer`` / ``worker_init_fn`` of every worker process: one thread, and death with the run."""
    torch.set_num_threads(1)
    _die_with_main()


def context() -> multiprocessing.context.BaseContext:
    """The start method of every worker process of a run."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx
