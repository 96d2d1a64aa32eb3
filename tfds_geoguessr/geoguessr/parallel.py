"""An ordered map over a process pool that never runs ahead of its consumer.

`ordered_map(function, items, num_workers)` yields `function(item)` in the
order of `items`, like `map`, computed by `num_workers` processes. The build
uses it to decode and resize frames on every core while TFDS writes the
results, in order, from the main process: the examples, keys and report do
not depend on the number of workers.

`multiprocessing.Pool.imap` alone would read the whole input ahead (its task
thread drains the iterator): here at most a window of items, and given their
weights (the build's: bytes) at most a budget of them, are in flight, so
memory stays bounded for any dataset size and any file size. Workers ignore
SIGINT: Ctrl-C reaches the main process only, which terminates the pool on
its way out. Workers start from a fork server, never by forking this
process: the server imports the function's module once per process
lifetime (for the build's `frames` module, ~0.6 s of CPU, most of it the
package's TFDS import), and each worker forked from it costs ~10-15 ms of
CPU (measured on a 2-core AMD EPYC).
"""

import collections
import functools
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


def ordered_map(function, items, num_workers, *, chunksize=CHUNKSIZE, weight=None, max_weight=None):
    """Yields `function(item)` for each of `items`, in order.

    Args:
        function: A picklable function (module level, or a `functools.partial`
            of one) of one argument.
        items: Any iterable; read lazily, at most `4 * num_workers * chunksize`
            items ahead of the consumer.
        num_workers: Processes; 1 runs everything in this process.
        chunksize: Items per task sent to a worker.
        weight: Optional `item -> int` (e.g. its bytes). With `max_weight`,
            the items sent and not yet answered weigh at most `max_weight`
            together (one item alone may weigh more): a few large inputs
            wait instead of filling the memory.
        max_weight: The bound of `weight`; None: none.

    Example:
        >>> list(ordered_map(abs, [-2, 1, -3], num_workers=2))
        [2, 1, 3]
    """
    if num_workers < 1:
        raise ValueError(f"`num_workers` must be >= 1. Received: num_workers={num_workers}")
    if num_workers == 1:
        yield from map(function, items)
        return
    flight = _Flight(4 * num_workers * chunksize, max_weight)
    # forkserver: workers fork from a clean server process that imported
    # `function`'s module once. Plain fork would copy this process's
    # threads' locks (TensorFlow, gRPC) and can deadlock the workers.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        module = getattr(function, "func", function).__module__
        context.set_forkserver_preload([module])
    pool = context.Pool(num_workers, initializer=_ignore_sigint)
    chunks = _chunks(items, chunksize, weight or (lambda item: 0), flight)
    try:
        # Our own chunks, one task each: a chunk is sent as soon as it is
        # made, so waiting for room never holds back items already counted.
        for results in pool.imap(functools.partial(_apply, function), chunks, 1):
            flight.done()
            yield from results
        pool.close()
    finally:
        flight.stop()
        pool.terminate()
        pool.join()


class _Flight:
    """Counts the items and weight sent to the pool and not yet answered."""

    def __init__(self, max_items, max_weight):
        self.max_items, self.max_weight = max_items, max_weight
        self.items, self.weight, self.sent = 0, 0, collections.deque()
        self.condition = threading.Condition()
        self.stopped = False

    def wait_for_room(self, items, weight):
        """Blocks until `items` more items and `weight` more fit; False once stopped."""
        with self.condition:
            while not self.stopped and not self._fits(items, weight):
                self.condition.wait(0.1)
            return not self.stopped

    def _fits(self, items, weight):
        if self.items == 0:
            return True  # Anything fits an empty pool: progress is guaranteed.
        heavy = self.max_weight is not None and self.weight + weight > self.max_weight
        return self.items + items <= self.max_items and not heavy

    def send(self, items, weight):
        with self.condition:
            self.items += items
            self.weight += weight
            self.sent.append((items, weight))

    def done(self):
        with self.condition:
            items, weight = self.sent.popleft()
            self.items -= items
            self.weight -= weight
            self.condition.notify_all()

    def stop(self):
        with self.condition:
            self.stopped = True
            self.condition.notify_all()


def _chunks(items, chunksize, weight, flight):
    """Yields lists of up to `chunksize` items, each sent once `flight` has room for it."""
    chunk, chunk_weight = [], 0
    for item in items:
        item_weight = weight(item)
        heavy = flight.max_weight is not None and chunk_weight + item_weight > flight.max_weight
        if chunk and (len(chunk) == chunksize or heavy):
            flight.send(len(chunk), chunk_weight)
            yield chunk
            chunk, chunk_weight = [], 0
        if not flight.wait_for_room(len(chunk) + 1, chunk_weight + item_weight):
            return  # The consumer is gone: let the pool close.
        chunk.append(item)
        chunk_weight += item_weight
    if chunk:
        flight.send(len(chunk), chunk_weight)
        yield chunk


def _apply(function, chunk):
    return [function(item) for item in chunk]


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
