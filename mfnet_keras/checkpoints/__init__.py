"""Importing the released PyTorch MF-Net checkpoints, PyTorch not needed.

- `pth_reader`: reads a `.pth` file (zip or legacy) without executing anything in it.
- `key_mapping`: Keras weight path ↔ checkpoint key, and loading a state dict into a model.

A `.pth` is also a preset handle (`VideoClassifier.from_preset("MFNet3D_Kinetics-400_72.8.pth")`):
the release is recognised by its file name in the preset table. `mfnet_keras.convert` writes it
out as a preset folder.
"""
