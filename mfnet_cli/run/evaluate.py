"""`mfnet-evaluate` after parsing: the config's records checked, then `mfnet_keras.evaluate.evaluate`."""

import os

import tensorflow as tf

from mfnet_cli.quiet import fail
from mfnet_keras.config import ConfigError, load_config
from mfnet_keras.evaluate import check_records, data_error_text, evaluate


def run(parser, args):
    """Evaluates `--weights` on the config's eval records; the report goes to `--output` (default beside them).

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    config = load_config(args.config, args.set)
    if not os.path.exists(args.weights):
        raise ConfigError(f"config error: --weights {args.weights} does not exist")
    check_records(config)
    try:
        evaluate(config, args.weights, args.output or os.path.join(os.path.dirname(args.weights) or ".", "eval"))
    except tf.errors.InvalidArgumentError as error:  # bad eval data: the message names the file and record
        return fail(data_error_text(error))
    return 0
