"""Converts a released PyTorch MF-Net checkpoint into a Keras preset folder, without PyTorch.

    mfnet-convert SRC.pth OUT_DIR [--preset NAME] [--num-classes N]
    convert(src, out, preset=None, num_classes=None)  # the same, from Python

OUT_DIR becomes a preset folder (`config.json`, `model.weights.h5`,
`task.json`, `task.weights.h5`, `preprocessor.json`, `metadata.json`) that
`VideoClassifier.from_preset(OUT_DIR)` loads and that can be uploaded to
Hugging Face or Kaggle as it is. OUT may also end in `.keras` (the classifier)
or `.weights.h5` (its weights only). The preprocessing and class names are
those of the release recognised by the file name, or of `--preset NAME`.
"""

from mfnet_keras.files import save_model
from mfnet_keras.models import VideoClassifier
from mfnet_keras.models.preset_loader import classifier_from_checkpoint


def convert(src, out, preset=None, num_classes=None, skip_classifier=False):
    """Loads the checkpoint `src` into its `VideoClassifier` and writes it to `out`; returns the classifier.

    Args:
        src: a `.pth` checkpoint.
        out: a preset folder, `NAME.keras` or `NAME.weights.h5`.
        preset: the registered preset it holds (default: from the file name, else `mfnet3d`).
        num_classes: the classifier's size (default: the checkpoint's).
        skip_classifier: leave the classifier random.
    """

    model = classifier_from_checkpoint(
        VideoClassifier, src, release=preset, num_classes=num_classes, skip_classifier=skip_classifier
    )
    if out.endswith((".keras", ".weights.h5")):
        save_model(model, out)
    else:
        model.save_to_preset(out)
    return model
