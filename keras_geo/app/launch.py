"""Start the app: check the port, load the model, serve with uvicorn until Ctrl-C or SIGTERM."""

import signal
import socket
import sys

from keras_geo.errors import UserError


def check_port(host, port):
    """Raises UserError (one line) if `host:port` cannot be bound now."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UserError(
            f"--host {host} is not an address of this machine ({error.strerror})."
        ) from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # As uvicorn binds.
        try:
            probe.bind(address)
        except OSError as error:
            raise UserError(
                f"--port {port}: cannot listen on {host}:{port} ({error.strerror}); "
                "pass another --port or stop the program using it."
            ) from None


def serve(model=None, *, host="127.0.0.1", port=7860, top_k=5, max_upload_mb=20, max_batch=8):
    """Serves the app for `model` (a path `keras_geo.predict.load_predictor` accepts).

    `model=None` serves the model bundled with keras-geo (`keras_geo.bundled`).

    SIGTERM stops it as Ctrl-C does: requests in flight are answered, the
    examples and every upload (`uploads.private_cache`) are deleted, "stopped"
    is printed and the exit code is 0.

    Returns:
        0 once stopped (Ctrl-C or SIGTERM).

    Raises:
        UserError: the port is taken or the model cannot be loaded.
    """
    import uvicorn

    from keras_geo import predict
    from keras_geo.app import server, uploads

    check_port(host, port)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # Like Ctrl-C, from here on.
    try:
        predictor = predict.load_predictor(model)
        state = server.make_state(
            predictor,
            model_name=predictor.info.name,
            top_k=top_k,
            max_upload_mb=max_upload_mb,
            max_batch=max_batch,
        )
        try:
            app = server.build_app(state)
            config = uvicorn.Config(app, host=host, port=port, log_level="warning")
            url_host = f"[{host}]" if ":" in host else host
            url = f"http://{url_host}:{port}/"
            print(f"keras-geo app: model {predictor.info.summary()}")
            print(f"keras-geo app: serving {predictor.info.name} on {url} (Ctrl-C stops it)")
            sys.stdout.flush()
            try:
                # uvicorn shuts down on SIGINT or SIGTERM, then raises the signal
                # again for the handler it found: `_interrupt` for both.
                uvicorn.Server(config).run()
            except KeyboardInterrupt:
                pass
        finally:
            state.close()
            uploads.remove_private_cache()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("keras-geo app: stopped.")
    return 0


def _interrupt(signum, frame):
    """SIGTERM handled as SIGINT: a KeyboardInterrupt, so every cleanup runs."""
    raise KeyboardInterrupt
