"""Answer concurrent requests with one model call per batch of waiting images.

Every request thread (FastAPI's thread pool, Gradio's workers) hands its
encoded image to `Batcher.submit` and waits on the returned future. One worker
thread takes whatever is waiting, up to `max_batch` images, and makes a single
`predictor.probabilities_batch` call: the per-call overhead (eager dispatch,
the SavedModel's function call) is paid once per batch, the matrix products
run on a bigger batch, and only one thread ever calls the model, so results
cannot be mixed up. A request that arrives alone is not delayed: the worker
never waits for a batch to fill.

A batch whose decoding fails (one corrupt image) is retried image by image, so
only the bad request gets the error. `Batcher.run` hands the same thread a call
no batch can share (the app's Grad-CAM), so every model call has one caller.
"""

import concurrent.futures
import queue
import threading
import typing

import numpy as np

_STOP = object()


def _of_predictor(name):
    """A read-only attribute that is the wrapped predictor's `name`."""
    return property(lambda self: getattr(self.predictor, name), doc=f"The predictor's `{name}`.")


class _Job(typing.NamedTuple):
    """A call for the worker thread (`Batcher.run`) and the future of its result."""

    fn: typing.Callable
    args: tuple
    future: concurrent.futures.Future

    def run(self):
        try:
            self.future.set_result(self.fn(*self.args))
        except Exception as error:  # noqa: BLE001 (handed to the caller's future)
            self.future.set_exception(error)


class Batcher:
    """Runs `predictor.probabilities_batch` on a worker thread for concurrent callers.

    A `keras_geo.predict.Predictor` itself: it answers for the predictor it wraps.

    Args:
        predictor: a `keras_geo.predict.Predictor` (`probabilities_batch(list of bytes)`).
        max_batch: most images per model call; 1 turns batching off.

    Example (a stand-in predictor that gives each image its length):
        >>> class Lengths:
        ...     def probabilities_batch(self, images):
        ...         return [[len(image)] for image in images]
        >>> batcher = Batcher(Lengths(), max_batch=8)
        >>> batcher.probabilities(b"abc").tolist()
        [3]
        >>> batcher.close()
    """

    class_names = _of_predictor("class_names")
    coordinates = _of_predictor("coordinates")
    info = _of_predictor("info")
    tta = _of_predictor("tta")

    def __init__(self, predictor, *, max_batch=8):
        if max_batch < 1:
            raise ValueError(f"`max_batch` must be >= 1. Received: max_batch={max_batch}")
        self.predictor = predictor
        self.max_batch = max_batch
        self.batch_sizes = []  # One entry per model call, for tests and benchmarks.
        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="keras-geo-batcher", daemon=True)
        self._worker.start()

    def submit(self, image_bytes):
        """Queues one encoded image; returns a future of its `[C]` probabilities."""
        future = concurrent.futures.Future()
        self._queue.put((image_bytes, future))
        return future

    def probabilities(self, image_bytes):
        """Returns the `[C]` probabilities of one image (blocks until computed)."""
        return self.submit(image_bytes).result()

    def probabilities_batch(self, images):
        """Returns the `[N, C]` probabilities of N images (blocks until all are computed)."""
        futures = [self.submit(image_bytes) for image_bytes in images]
        return np.stack([future.result() for future in futures])

    def run(self, fn, *args):
        """Runs `fn(*args)` on the worker thread, between batches; returns its result.

        For model calls no batch can share (Grad-CAM's gradient tape), so that
        they too go through the one model caller.
        """
        future = concurrent.futures.Future()
        self._queue.put(_Job(fn, args, future))
        return future.result()

    def close(self):
        """Stops the worker after the queued requests are answered."""
        self._queue.put(_STOP)
        self._worker.join()

    def _run(self):
        held = None  # A job or the stop met while filling a batch: next, in queue order.
        while True:
            item, held = (self._queue.get(), None) if held is None else (held, None)
            if item is _STOP:
                return
            if isinstance(item, _Job):
                item.run()
                continue
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP or isinstance(item, _Job):
                    held = item  # Answer this batch first.
                    break
                batch.append(item)
            self._answer(batch)

    def _answer(self, batch):
        futures = [future for _, future in batch]
        try:
            self.batch_sizes.append(len(batch))
            probabilities = np.asarray(self.predictor.probabilities_batch([b for b, _ in batch]))
            if len(probabilities) != len(batch):
                raise RuntimeError(f"{len(probabilities)} answers for {len(batch)} images")
        except Exception as error:  # noqa: BLE001 (handed to the caller's future)
            if len(batch) > 1:
                for item in batch:  # Find the bad image; the others still get answers.
                    self._answer([item])
            else:
                futures[0].set_exception(error)
            return
        for future, row in zip(futures, probabilities, strict=True):
            future.set_result(row)
