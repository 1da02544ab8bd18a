"""OpenVINO's int8 model: NNCF post-training quantisation of an exported model, the classifier kept float."""

import contextlib
import logging
import os
import sys

from mfnet_keras.files import PARTIAL


def quantize_int8(path, clips):
    """Quantises the OpenVINO model at `path` in place to int8 with NNCF, calibrated on `clips`; the
    classifier's matrix product stays float.

    Args:
        path: the OpenVINO `.xml` model.
        clips: float32 calibration clips.
    """
    import nncf
    import openvino

    model = openvino.Core().read_model(path)  # maps model.bin: the result is written beside it, then renamed
    ignored = nncf.IgnoredScope(types=["MatMul"])
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)  # its INFO lines and progress bars would go to stdout, which is for results
    try:
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(model, nncf.Dataset(clips), subset_size=len(clips), ignored_scope=ignored)
    finally:
        logger.setLevel(level)
    partial = os.path.join(os.path.dirname(path), PARTIAL, os.path.basename(path))
    openvino.save_model(quantized, partial, compress_to_fp16=False)
    for suffix in (".xml", ".bin"):
        os.replace(os.path.splitext(partial)[0] + suffix, os.path.splitext(path)[0] + suffix)
