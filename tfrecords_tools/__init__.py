"""Packs video datasets into sharded TFRecords (`pack`), checks them (`inspect`), makes test data (`synthetic`)."""

__version__ = "0.1.0"
