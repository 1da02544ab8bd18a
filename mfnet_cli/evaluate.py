"""`mfnet-evaluate`: `mfnet_keras.evaluate.evaluate`, multi-view, on the records of a config."""

import argparse
import os
import sys

from mfnet_cli.quiet import add_verbose_argument, fail, import_tensorflow


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mfnet-evaluate",
        description="Multi-view evaluation: video/clip accuracy, per-class accuracy plot, confusion matrix.",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="the training config (data, clip size, eval views): a file or a packaged config's name",
    )
    parser.add_argument(
        "--weights", required=True, help="a .keras classifier (e.g. runs/NAME/model.keras) or a preset folder"
    )
    parser.add_argument(
        "--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys (repeatable)"
    )
    parser.add_argument("--output", help="report folder (default: <weights folder>/eval)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    import tensorflow as tf

    from mfnet_keras.config import ConfigError, load_config
    from mfnet_keras.evaluate import check_records, data_error_text, evaluate
    from mfnet_keras.models import PresetError

    try:
        config = load_config(args.config, args.set)
        if not os.path.exists(args.weights):
            raise ConfigError(f"config error: --weights {args.weights} does not exist")
        check_records(config)
    except ConfigError as error:
        return fail(error, 2, prefix="")
    try:
        evaluate(config, args.weights, args.output or os.path.join(os.path.dirname(args.weights) or ".", "eval"))
    except tf.errors.InvalidArgumentError as error:  # bad eval data: the message names the file and record
        return fail(data_error_text(error))
    except PresetError as error:  # a model file or preset that Keras or our checks refuse
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
