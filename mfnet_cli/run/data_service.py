"""`mfnet-data-service` after parsing: a dispatcher or a worker of `mfnet_keras.data.service`, until stopped."""

import signal
import threading

import tensorflow as tf

from mfnet_cli.quiet import fail
from mfnet_keras.data import service


def serve(server, description):
    """Prints `description` and blocks until SIGINT or SIGTERM, then stops `server`.

    Args:
        server: a started tf.data service server.
        description: the line printed once it serves.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(description, flush=True)
    stop.wait()
    server.stop()


def run(parser, args):
    """Starts the role's server and serves until Ctrl-C or SIGTERM; 2 for an address or port it cannot use.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    try:
        if args.role == "dispatcher":
            server = service.start_dispatcher(args.port, args.work_dir)
            serve(server, f"dispatcher listening on {server.target}")
        else:
            server = service.start_worker(args.dispatcher, args.port, args.host)
            serve(server, f"worker {args.host}:{args.port} serving {service.check_address(args.dispatcher)}")
    except (ValueError, tf.errors.OpError) as error:
        return fail(error, 2)
    return 0
