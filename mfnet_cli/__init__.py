"""The `mfnet-*` command lines: `mfnet_cli.<command>` parses the arguments, `mfnet_cli.run.<command>` runs them.

The package sits beside `mfnet_keras` and `tfrecords_tools`, outside their import
path: `import mfnet_keras` loads Keras (it registers the Keras classes, so that
`keras.saving.load_model` reads the project's files), and a command answers
`--help` before any of that loads. `quiet.launch` loads the library after
parsing, with TensorFlow's start-up lines held back unless `--verbose`.
"""
