"""Decoding on more machines: the training pipeline run by tf.data service workers.

`mfnet-data-service` (`mfnet_cli.data_service`) starts the servers;
`mfnet-train --data-service grpc://HOST:PORT` (or `train_dataset(...,
data_service=...)`) sends the training pipeline to them.

TensorFlow's own dispatcher and worker servers (`tf.data.experimental.service`):
the trainer sends its training pipeline's graph to the dispatcher, every
worker runs it and streams batches back. The dispatcher hands out the
pipeline's passes over the data one at a time (dynamic sharding), so workers
read different passes, a worker that joins late starts on the next one, and a
worker that stops takes only the rest of its pass with it: training goes on
with the others. Workers read the records at the paths the trainer gives, so
the records must be reachable from every worker at the same path (a shared
file system or `gs://`). Validation stays on the trainer.

Examples:
>>> from mfnet_keras.data import service
>>> dispatcher = service.start_dispatcher(port=0)
>>> dispatcher.target.startswith("grpc://")
True
"""

import tensorflow as tf

PROTOCOL = "grpc"


def check_address(address):
    """`address` as the dispatcher's `grpc://host:port`, or ValueError naming what is wrong with it.

    Args:
        address: `HOST:PORT` or `grpc://HOST:PORT`.
    """
    text = str(address)
    if "://" not in text:
        text = f"{PROTOCOL}://{text}"
    scheme, _, rest = text.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != PROTOCOL or not host or not port.isdigit():
        raise ValueError(f"a tf.data service address is grpc://HOST:PORT. Received: {address!r}")
    return text


def distribute(ds, address):
    """`ds` read from the tf.data service dispatcher at `address`: its workers run the pipeline, each on the
    passes the dispatcher hands it (the dataset's first source is split among them).

    Args:
        ds: the training pipeline, as `train_dataset` builds it.
        address: the dispatcher's `grpc://HOST:PORT`.
    """
    return ds.apply(
        tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=check_address(address),
        )
    )


def start_dispatcher(port=5050, work_dir=None):
    """A running dispatcher server on `port` (0: any free port; its address is `.target`). With `work_dir`
    it keeps its state there and a restarted dispatcher carries on with the same jobs.

    Args:
        port: the port to listen on (0: any free port).
        work_dir: a folder for the dispatcher's state, so that a restart carries on.
    """
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=bool(work_dir)
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher, port=5051, host="localhost"):
    """A running worker server registered with the dispatcher at `dispatcher` (`HOST:PORT`); `host` is how
    the trainer reaches this worker.

    Args:
        dispatcher: the dispatcher's `HOST:PORT` (or `grpc://HOST:PORT`).
        port: the port to listen on.
        host: this machine's name as the trainer reaches it.
    """
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=check_address(dispatcher).partition("://")[2],
        worker_address=f"{host}:%port%",
        port=port,
        heartbeat_interval_ms=1000,
    )
    return tf.data.experimental.service.WorkerServer(config)
