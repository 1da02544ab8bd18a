"""Runs a tf.data service dispatcher or worker: decoding training clips on more machines.

    mfnet-data-service dispatcher [--port 5050] [--work-dir DIR]
    mfnet-data-service worker --dispatcher HOST:5050 [--port 5051] [--host NAME]
    mfnet-train --config ... --data-service grpc://HOST:5050

See `mfnet_keras.data.service` for how the work is shared. A server runs until
Ctrl-C or SIGTERM.
"""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-data-service`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-data-service",
        description="Run a tf.data service dispatcher or worker, to decode training clips on more machines "
        "(mfnet-train --data-service grpc://HOST:PORT). Runs until Ctrl-C or SIGTERM.",
    )
    roles = parser.add_subparsers(dest="role", required=True)
    dispatcher = roles.add_parser("dispatcher", help="the server that trainers and workers connect to")
    dispatcher.add_argument("--port", type=int, default=5050, help="port to listen on (default: 5050)")
    dispatcher.add_argument("--work-dir", help="keep the dispatcher's state here, so that a restart carries on")
    worker = roles.add_parser("worker", help="a server that runs the training pipeline")
    worker.add_argument("--dispatcher", required=True, help="the dispatcher's HOST:PORT (or grpc://HOST:PORT)")
    worker.add_argument("--port", type=int, default=5051, help="port to listen on (default: 5051)")
    worker.add_argument("--host", default="localhost", help="this machine's name as trainers reach it")
    for role in (dispatcher, worker):
        add_verbose_argument(role)
    return launch(parser, parser.parse_args(argv), "data_service")


if __name__ == "__main__":
    sys.exit(main())
