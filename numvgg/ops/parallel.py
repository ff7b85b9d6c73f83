"""A small thread pool for the NumPy work around BLAS.

Copies, padding, Winograd's transforms, ReLU and pooling are NumPy calls that
release the GIL, but each runs on one core. :func:`parallel_map` splits such
work over ``numvgg.config.num_threads()`` threads (one per core by default),
and limits BLAS to one thread while they run, so the cores are shared between
the workers instead of being oversubscribed (threadpoolctl sets OpenBLAS'
thread count).

The split never depends on the number of threads: callers cut the work into
the same pieces whatever the setting, and each piece is computed the same
way, so results are bit-identical with 1 thread or many.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import config

# Work is cut into this many pieces whatever the thread setting (so results do
# not depend on it): the machine's usable cores, at least two.
PIECES = max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2)

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_controller = None
_inside = threading.local()  # set in worker threads: nested calls run serially


def _blas_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def _get_pool(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="numvgg")
            _pool_size = size
        return _pool


def _forget_pool_after_fork():
    """A forked child has the pool object but none of its threads: start afresh."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _run_marked(fn, item):
    _inside.active = True
    try:
        return fn(item)
    finally:
        _inside.active = False


def parallel_map(fn, items) -> list:
    """``[fn(item) for item in items]``, on up to ``config.num_threads()`` threads.

    With one thread, one item, or when called from inside a worker, it is
    exactly that list comprehension.
    """
    items = list(items)
    threads = min(config.num_threads(), len(items))
    if threads <= 1 or getattr(_inside, "active", False):
        return [fn(item) for item in items]
    pool = _get_pool(threads)
    with _blas_controller().limit(limits=1, user_api="blas"):
        return list(pool.map(lambda item: _run_marked(fn, item), items))


def split(n: int, pieces: int) -> list[slice]:
    """``range(n)`` cut into at most ``pieces`` nearly equal, non-empty slices."""
    pieces = max(1, min(pieces, n))
    bounds = [n * i // pieces for i in range(pieces + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(pieces)]
