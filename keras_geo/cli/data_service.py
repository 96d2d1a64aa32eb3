"""`keras-geo data-service dispatcher|worker`: a tf.data service for input-bound runs.

Start one dispatcher and any number of workers (each where the TFDS data dir
is readable at the same path), then train with `--data-service
grpc://DISPATCHER:PORT`: decoding, augmentation and batching of image epochs
run on the workers. Python equivalent, without keras-geo:

    tf.data.experimental.service.DispatchServer(
        tf.data.experimental.service.DispatcherConfig(port=5050)).join()
    tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(
            dispatcher_address="HOST:5050", port=5051)).join()
"""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "data-service",
        help="run a tf.data service dispatcher or worker (for --data-service)",
        description=__doc__.split("\n\n", 1)[1],
    )
    roles = parser.add_subparsers(dest="role", metavar="ROLE")
    roles.required = True
    dispatcher = roles.add_parser("dispatcher", help="the service's dispatcher")
    dispatcher.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    dispatcher.add_argument(
        "--work-dir", help="journal folder: a restarted dispatcher resumes its jobs"
    )
    dispatcher.set_defaults(func=run_dispatcher)
    worker = roles.add_parser("worker", help="a worker that produces elements")
    worker.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    worker.add_argument(
        "--dispatcher", required=True, help="the dispatcher's HOST:PORT (or grpc://HOST:PORT)"
    )
    worker.set_defaults(func=run_worker)


def run_dispatcher(args):
    from keras_geo import distribute

    distribute.serve_dispatcher(_port(args.port), work_dir=args.work_dir)


def run_worker(args):
    from keras_geo import distribute

    distribute.serve_worker(args.dispatcher, _port(args.port))


def _port(port):
    from keras_geo.errors import UserError

    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0-65535. Received: {port}")
    return port
