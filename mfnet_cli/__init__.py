"""The `mfnet-*` command lines: each parses its arguments, then imports the library and calls it.

The package sits beside `mfnet_keras` and `tfrecords_tools`, outside their import
path: `import mfnet_keras` loads Keras (it registers the Keras classes, so that
`keras.saving.load_model` reads the project's files), and a command answers
`--help` before any of that loads. TensorFlow's start-up lines are held back by
`quiet.import_tensorflow` unless `--verbose`.
"""
