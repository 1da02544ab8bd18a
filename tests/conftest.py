"""Test session set-up: TensorFlow backend, quiet logs, mfnet_keras imported before TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mfnet_keras  # noqa: E402,F401  (sets oneDNN before TensorFlow loads)
