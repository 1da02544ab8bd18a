"""Your own videos: `video_dataset_from_directory` on real files in several codecs and sizes, and the
five-line fine-tuning recipe (dataset, from_preset, compile, fit, predict) on every backend."""

import json
import os

import av
import numpy as np
import pytest
from commands import BACKENDS, run_on_backend
from test_case import SMALL_MFNET

import mfnet_cli.evaluate
import mfnet_cli.train

# (file name, codec, pixel format, width, height): containers, codecs and shapes a user's folder may mix.
FORMATS = (
    ("a.mp4", "libx264", "yuv420p", 96, 64),
    ("b.avi", "mpeg4", "yuv420p", 80, 60),
    ("c.webm", "libvpx-vp9", "yuv420p", 64, 96),
    ("d.mkv", "mjpeg", "yuvj420p", 112, 64),
)


def write_moving_square(path, codec, pix_fmt, width, height, step, frames=20, seed=0):
    """A bright square crossing a noisy background by `step` pixels a frame (left or right)."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for t in range(frames):
            image = background.copy()
            x = (width // 2 + step * t) % (width - 16)
            image[height // 2 - 8 : height // 2 + 8, x : x + 16] = (250, 230, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def own_videos(tmp_path_factory):
    """`<class>/<video>`: two classes, each video in another container, codec and size, and one file of
    garbage that claims to be an MP4."""
    root = tmp_path_factory.mktemp("own_videos")
    for label, step in (("left", -3), ("right", 3)):
        (root / label).mkdir()
        for seed, (name, *form) in enumerate(FORMATS):
            write_moving_square(root / label / name, *form, step=step, seed=seed)
    (root / "right" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    return root


def test_dataset_from_directory_reads_every_codec_and_skips_what_does_not_decode(own_videos, capfd):
    from mfnet_keras.data import video_dataset_from_directory

    train, val = video_dataset_from_directory(
        str(own_videos), batch_size=3, seed=1, validation_split=0.25, subset="both", clip_length=4, crop_size=32
    )
    assert train.class_names == val.class_names == ["left", "right"]
    assert len(train.file_paths) + len(val.file_paths) == 9 and not set(train.file_paths) & set(val.file_paths)
    epochs = [[(c.numpy(), y.numpy()) for c, y in train] for _ in range(2)]
    views = [[(c.numpy(), y.numpy()) for c, y in val] for _ in range(2)]
    broken = [p for p in train.file_paths + val.file_paths if p.endswith("broken.mp4")]
    clips = sum(len(y) for _, y in epochs[0]) + sum(len(y) for _, y in views[0])
    assert clips == 8  # every readable video, once
    assert (train.skipped.count + val.skipped.count) == 1 and broken
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: skipping {broken[0]}: ")
    for clip, labels in epochs[0] + views[0]:
        assert clip.shape[1:] == (4, 32, 32, 3) and clip.dtype == np.float32
        assert 0 <= clip.min() and clip.max() <= 255 and set(labels.tolist()) <= {0, 1}
    # Validation clips are the same every time, training clips are drawn again each epoch.
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(*views))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(*epochs))


def test_validation_clip_is_what_prediction_sees(own_videos):
    """The centre clip of the validation subset equals the one `mfnet-predict` classifies (one clip,
    short side resized, centre crop), within resampling noise."""
    from mfnet_keras.data import video_dataset_from_directory
    from mfnet_keras.inference import sample_clips
    from mfnet_keras.models import VideoClassifierPreprocessor
    from tfrecords_tools.video import decode_video

    path = str(own_videos / "left" / "a.mp4")
    ds = video_dataset_from_directory(
        str(own_videos / "left"), labels=None, label_mode=None, clip_length=4, crop_size=32, training=False
    )
    (clip,) = [c for c, p in zip(ds.unbatch(), ds.file_paths) if p == path]
    preprocessor = VideoClassifierPreprocessor(clip_length=4, crop_size=32, frame_interval=2)
    frames = decode_video(path, short_side=preprocessor.short_side).frames
    expected = np.asarray(preprocessor.resize_and_crop(sample_clips(frames, 4, 2, 1)))[0]
    assert np.abs(clip.numpy() - expected).mean() < 3.0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            {"validation_split": 0.2},
            "`validation_split` and `subset` go together. Received: validation_split=0.2, subset=None",
        ),
        ({"subset": "train", "validation_split": 0.2, "seed": 0}, "`subset` must be one of"),
        ({"validation_split": 0.2, "subset": "both"}, "`validation_split` with `shuffle=True` needs a `seed`"),
        ({"label_mode": "binary"}, "`label_mode` must be 'int', 'categorical' or None. Received: label_mode='binary'"),
    ],
)
def test_dataset_from_directory_refuses_bad_arguments(own_videos, arguments, message):
    from mfnet_keras.data import video_dataset_from_directory

    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        video_dataset_from_directory(str(own_videos), **arguments)


def test_an_empty_folder_says_so_in_one_line(tmp_path):
    from mfnet_keras.data import video_dataset_from_directory

    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "notes.txt").write_text("no videos here")
    with pytest.raises(ValueError) as raised:
        video_dataset_from_directory(str(tmp_path))
    assert str(raised.value).startswith(f"No videos found in {tmp_path} (looked for .mp4, .avi,")
    assert "\n" not in str(raised.value)


FIVE_LINES = """
import json, numpy as np
from mfnet_keras.data import video_dataset_from_directory
from mfnet_keras.models import VideoClassifier

train_ds, val_ds = video_dataset_from_directory({folder!r}, validation_split=0.25, subset="both", seed=0,
                                                 clip_length=4, crop_size=32, batch_size=2)
model = VideoClassifier.from_preset({preset!r}, num_classes=2, class_names=train_ds.class_names)
model.compile()
history = model.fit(train_ds, validation_data=val_ds, epochs=2, verbose=0)
logits = model.predict(val_ds, verbose=0)

print(json.dumps({{"loss": history.history["loss"], "shape": list(logits.shape),
                  "finite": bool(np.isfinite(logits).all()), "classes": model.class_names}}))
"""


@pytest.fixture(scope="module")
def small_preset(tmp_path_factory):
    """A small MF-Net 3D preset folder standing in for a pretrained one (another number of classes)."""
    from mfnet_keras.models import VideoClassifier

    folder = tmp_path_factory.mktemp("preset")
    model = VideoClassifier.from_preset(
        "mfnet3d",
        num_classes=5,
        clip_length=4,
        crop_size=32,
        **SMALL_MFNET,
    )
    model.save_to_preset(str(folder))
    return folder


@pytest.mark.parametrize("backend", BACKENDS)
def test_five_lines_fine_tune_and_predict_on_own_videos(own_videos, small_preset, backend):
    ran = run_on_backend(backend, FIVE_LINES.format(folder=str(own_videos), preset=str(small_preset)), tensorflow=True)
    assert ran["shape"] == [2, 2] and ran["finite"] and ran["classes"] == ["left", "right"]
    assert len(ran["loss"]) == 2 and all(np.isfinite(ran["loss"]))


SMALL_OPTIONS = f"model.options={json.dumps(SMALL_MFNET)}"  # YAML reads JSON


def test_train_command_takes_a_folder_of_videos(own_videos, tmp_path, capsys):
    """`mfnet-train --videos DIR`: the packaged own_videos config, its validation part reported each epoch;
    mfnet-evaluate says in one line that it reads records."""

    out = tmp_path / "run"
    argv = ["--videos", str(own_videos), "--output", str(out), "--set", "model.clip_length=4", "model.crop_size=32"]
    argv += ["train.epochs=1", "train.batch_size=2", "data.validation_split=0.25", SMALL_OPTIONS]
    assert mfnet_cli.train.main(argv) == 0
    assert (out / "labels.txt").read_text().split() == ["left", "right"]
    header = (out / "log.csv").read_text().splitlines()[0]
    assert "val_accuracy" in header.split(",")
    assert (out / "model.keras").exists()
    capsys.readouterr()
    assert mfnet_cli.evaluate.main(["--config", str(out / "config.yaml"), "--weights", str(out / "model.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: mfnet-evaluate reads packed records (data.eval)") and "\n" not in err
