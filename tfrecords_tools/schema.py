"""The TFRecord schema: one `tf.train.SequenceExample` per video.

It is the one used by TF Model Garden's video reader and DeepMind's DMVR, so
records written here read there and theirs read here. This module is the
single definition; `tfrecords_tools.pack` writes it and `mfnet_keras.data`
reads it.

Context features:
    clip/label/index   int64   class index, 0-based
    clip/label/text    bytes   class name (DMVR's key)
    clip/label/string  bytes   class name again (MediaPipe's key)
    video/filename     bytes   path of the source video, relative to the source
    video/fps          float   frame rate of the stored frames
    video/num_frames   int64
    video/height       int64   of the stored frames
    video/width        int64
Feature list:
    image/encoded      bytes   one JPEG per frame
"""

LABEL_INDEX = "clip/label/index"
LABEL_TEXT = "clip/label/text"
LABEL_STRING = "clip/label/string"
FILENAME = "video/filename"
FPS = "video/fps"
NUM_FRAMES = "video/num_frames"
HEIGHT = "video/height"
WIDTH = "video/width"
IMAGE = "image/encoded"


def make_sequence_example(frames_jpeg, label_index, label_name, filename, fps, height, width):
    """Builds the serialized SequenceExample of one video.

    Args:
        frames_jpeg: the JPEG bytes of each frame.
        label_index: the class index.
        label_name: the class name.
        filename: the video's path relative to the dataset root.
        fps: its frame rate after resampling.
        height: frame height.
        width: frame width.
    """
    import tensorflow as tf

    def int64(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def bytes_(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    name = label_name.encode("utf-8")
    context = tf.train.Features(
        feature={
            LABEL_INDEX: int64(label_index),
            LABEL_TEXT: bytes_(name),
            LABEL_STRING: bytes_(name),
            FILENAME: bytes_(filename.encode("utf-8")),
            FPS: tf.train.Feature(float_list=tf.train.FloatList(value=[float(fps)])),
            NUM_FRAMES: int64(len(frames_jpeg)),
            HEIGHT: int64(height),
            WIDTH: int64(width),
        }
    )
    frames = tf.train.FeatureList(feature=[bytes_(jpeg) for jpeg in frames_jpeg])
    example = tf.train.SequenceExample(
        context=context, feature_lists=tf.train.FeatureLists(feature_list={IMAGE: frames})
    )
    return example.SerializeToString(deterministic=True)  # map order fixed: same bytes in every process


def parse_sequence_example(serialized, image_key=IMAGE, label_key=LABEL_INDEX, example_name=None):
    """Parses one record into `(jpeg_frames, context)`; works eagerly and inside `tf.data`.

    `context[label_key]` is a 1-D int64 tensor of the record's label indices
    (one for our records; DMVR's multi-label records hold several, and a
    record without labels gives an empty one). Only the frames are required,
    so DMVR/Model Garden records with other or extra keys parse too; missing
    optional context is filled with defaults ("" / 0 / -1). `example_name`
    names the record in a parse error.

    Args:
        serialized: one serialized `SequenceExample`.
        image_key: the feature list that holds the JPEGs.
        label_key: the context feature that holds the labels.
        example_name: the name a parse error gives the record.
    """
    import tensorflow as tf

    context_features = {
        label_key: tf.io.RaggedFeature(tf.int64),
        LABEL_TEXT: tf.io.FixedLenFeature([], tf.string, default_value=""),
        FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        FPS: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }
    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        example_name=example_name,
        context_features=context_features,
        sequence_features={image_key: tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    return sequence[image_key], context
