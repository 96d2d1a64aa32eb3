"""An ordered map over a process pool that never runs ahead of its consumer.

`ordered_map(function, items, num_workers)` yields `function(item)` in the
order of `items`, like `map`, computed by `num_workers` processes. The build
uses it to decode and resize frames on every core while TFDS writes the
results, in order, from the main process: the examples, keys and report do
not depend on the number of workers.

`multiprocessing.Pool.imap` alone would read the whole input ahead (its task
thread drains the iterator): here a semaphore keeps at most `window` items
in flight, so memory stays bounded for any dataset size. Workers ignore
SIGINT: Ctrl-C reaches the main process only, which terminates the pool on
its way out. Workers start from a fork server, never by forking this
process: the server imports the function's module once per process
lifetime (for the build's `frames` module, ~0.6 s of CPU, most of it the
package's TFDS import), and each worker forked from it costs ~10-15 ms of
CPU (measured on a 2-core AMD EPYC).
"""

import multiprocessing
import os
import signal
import threading

CHUNKSIZE = 8  # Items sent to a worker at a time (amortises the IPC).


def default_num_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Not Linux.
        return os.cpu_count() or 1


def ordered_map(function, items, num_workers, *, chunksize=CHUNKSIZE):
    """Yields `function(item)` for each of `items`, in order.

    Args:
        function: A picklable function (module level, or a `functools.partial`
            of one) of one argument.
        items: Any iterable; read lazily, at most `4 * num_workers * chunksize`
            items ahead of the consumer.
        num_workers: Processes; 1 runs everything in this process.
        chunksize: Items per task sent to a worker.

    Example:
        >>> list(ordered_map(abs, [-2, 1, -3], num_workers=2))
        [2, 1, 3]
    """
    if num_workers < 1:
        raise ValueError(f"`num_workers` must be >= 1. Received: num_workers={num_workers}")
    if num_workers == 1:
        yield from map(function, items)
        return
    window = threading.Semaphore(4 * num_workers * chunksize)
    stop = threading.Event()

    def feed():
        for item in items:
            while not window.acquire(timeout=0.1):
                if stop.is_set():  # The consumer is gone: let the pool close.
                    return
            yield item

    # forkserver: workers fork from a clean server process that imported
    # `function`'s module once. Plain fork would copy this process's
    # threads' locks (TensorFlow, gRPC) and can deadlock the workers.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        module = getattr(function, "func", function).__module__
        context.set_forkserver_preload([module])
    pool = context.Pool(num_workers, initializer=_ignore_sigint)
    try:
        for result in pool.imap(function, feed(), chunksize):
            window.release()
            yield result
        pool.close()
    finally:
        stop.set()
        pool.terminate()
        pool.join()


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
