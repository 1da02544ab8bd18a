"""Long videos as a timeline and Grad-CAM, on a small model trained here on two synthetic motion classes
(the demo's move_left and move_right: only the moving object tells them apart)."""

import inspect
import json
import os

import av
import numpy as np
import pytest
from commands import BACKENDS, run_on_backend
from test_case import SMALL_MFNET

import mfnet_cli.predict
from tfrecords_tools.synthetic import render_video
from tfrecords_tools.video import write_video

CLASSES = ("move_left", "move_right")
FPS = 12


@pytest.fixture(scope="module")
def motion_model(tmp_path_factory):
    """MF-Net 3D (small widths) trained on 8x64x64 clips of 160 videos, straight from their folder (about
    a minute on 2 cores; 94-97 % of the held-out videos right in trial runs)."""
    import keras

    from mfnet_keras.data import video_dataset_from_directory
    from mfnet_keras.initialization import zero_init_residual
    from mfnet_keras.models import VideoClassifier

    root = tmp_path_factory.mktemp("motion")
    for c, name in enumerate(CLASSES):
        (root / "videos" / name).mkdir(parents=True)
        for i in range(80):
            write_video(str(root / "videos" / name / f"{i:03d}.mp4"), render_video(name, 1000 * c + i, 24, 64), FPS)
    keras.utils.set_random_seed(0)
    options = dict(clip_length=8, crop_size=64, frame_intervals=(2,), flip=False, scale_range=(64, 72))
    train, val = video_dataset_from_directory(
        str(root / "videos"), validation_split=0.2, subset="both", seed=0, batch_size=8, **options
    )
    model = VideoClassifier.from_preset(
        "mfnet3d",
        num_classes=2,
        class_names=train.class_names,
        clip_length=8,
        crop_size=64,
        frame_interval=2,
        **SMALL_MFNET,
    )
    zero_init_residual(model)  # from scratch on little data: units start as the identity (as the demo's)
    epochs = 20
    model.compile(optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(1e-3, epochs * 16)))
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0)
    assert history.history["val_accuracy"][-1] >= 0.85, history.history["val_accuracy"]
    path = root / "motion.keras"
    model.save(path)
    return path


def concatenated(path, parts):
    """One video of `(class, frames)` parts played one after the other; returns the boundaries in frames."""
    frames = [render_video(name, 7000 + i, length, 64) for i, (name, length) in enumerate(parts)]
    write_video(str(path), np.concatenate(frames), FPS)
    return list(np.cumsum([length for _, length in parts])[:-1])


def test_timeline_finds_the_segments_in_order(motion_model, tmp_path, capsys):
    """Windows of one clip's span (15 frames), smoothed over three (one window wrong, as a small model
    trained in a minute sometimes gets one, splits no segment); the segments' boundaries fall mid-window
    and are found within one clip span of the truth. The video's last 5 frames, too few for a clip, join
    the window before them (alone they were a stray window that now and then split off a last segment)."""
    video = tmp_path / "long.mp4"
    truth = concatenated(video, [("move_left", 40), ("move_right", 45), ("move_left", 40)])
    span_seconds = 15 / FPS
    argv = [str(video), "--model", str(motion_model), "--timeline", str(span_seconds), "--json", "--smooth", "3"]
    assert mfnet_cli.predict.main([*argv, "--output", str(tmp_path / "plots")]) == 0
    result = json.loads(capsys.readouterr().out)
    segments = result["segments"]
    assert [s["label"] for s in segments] == ["move_left", "move_right", "move_left"], segments
    for segment, boundary in zip(segments, truth):
        assert abs(segment["end"] - boundary / FPS) <= span_seconds + 1e-6, (segments, truth)
    assert segments[0]["start"] == 0 and segments[-1]["end"] == pytest.approx(125 / FPS)
    assert all(set(s) == {"start", "end", "label", "index", "score"} and 0.5 <= s["score"] <= 1 for s in segments)
    assert [round(w["end"] * FPS) for w in result["timeline"]][-2:] == [105, 125]
    assert len(result["timeline"]) == 8 and result["plot"] == str(tmp_path / "plots" / "long.timeline.png")
    assert (tmp_path / "plots" / "long.timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path / "plots") == ["long.timeline.png"]


def test_timeline_windows_batched_match_one_at_a_time(motion_model, tmp_path):
    """Batching clips of several windows (and decoding alongside) gives each window the probabilities it
    gets alone; the last 4 frames join the window before them."""
    from mfnet_keras.inference import Classifier, sample_clips
    from mfnet_keras.timeline import classify_windows

    video = tmp_path / "two.mp4"
    concatenated(video, [("move_right", 30), ("move_left", 34)])
    classifier = Classifier(str(motion_model), runtime="keras")
    decoded, windows = classify_windows(classifier, str(video), 20 / FPS, clips=2, batch_size=3, progress=False)
    assert [(round(w["start"] * FPS), round(w["end"] * FPS)) for w in windows] == [
        (0, 20),
        (20, 40),
        (40, 64),
    ]
    for w in windows:
        part = decoded.frames[round(w["start"] * FPS) : round(w["end"] * FPS)]
        alone = classifier.probabilities(sample_clips(part, 8, 2, max(1, min(2, len(part) // 15)))).mean(axis=0)
        np.testing.assert_allclose(w["probabilities"], alone, atol=1e-5)


def test_timeline_min_score_and_smooth():
    from mfnet_keras.timeline import segments

    rows = [[0.9, 0.1], [0.2, 0.8], [0.9, 0.1], [0.9, 0.1], [0.45, 0.55], [0.1, 0.9]]
    windows = [{"start": t, "end": t + 1, "probabilities": np.array(p)} for t, p in enumerate(rows)]
    labels = lambda found: [(s["start"], s["end"], s["label"]) for s in found]  # noqa: E731
    assert labels(segments(windows, ["a", "b"])) == [(0, 1, "a"), (1, 2, "b"), (2, 4, "a"), (4, 6, "b")]
    assert labels(segments(windows, ["a", "b"], smooth=3)) == [(0, 4, "a"), (4, 6, "b")]
    assert labels(segments(windows, ["a", "b"], min_score=0.6)) == [(0, 1, "a"), (1, 2, "b"), (2, 4, "a"), (5, 6, "b")]


def moving_boxes(video, indices):
    """Per frame of `indices`, the bounding box of what moves (pixels that change from or to a neighbour)."""
    changed = np.abs(np.diff(video.astype(int), axis=0)).sum(-1) > 40
    moving = np.zeros(video.shape[:3], bool)
    moving[1:] |= changed
    moving[:-1] |= changed
    boxes = np.zeros((len(indices), *video.shape[1:3]), np.float32)
    for t, i in enumerate(indices):
        ys, xs = np.nonzero(moving[i])
        boxes[t, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1
    return boxes


SALIENCY = """
import json, keras, numpy as np
from keras import ops
from mfnet_keras.explain import explain_clip, split_at, upsample
from mfnet_keras.models import load_model
from tfrecords_tools.synthetic import render_video

model = load_model({model!r})
pre = model.preprocessor
ratios, right = [], 0
for seed in range(6):
    for name in ("move_left", "move_right"):
        video = render_video(name, 99000 + seed, 24, 64)
        indices = list(range(4, 20, 2))
        explained = explain_clip(model, video[indices])
        right += explained.label == name
        boxes = moving_boxes(video, indices)
        box = ops.convert_to_numpy(pre.resize_and_crop(np.repeat(boxes[None, ..., None] * 255, 3, -1)))[0, ..., 0] > 127
        ratios.append(float((explained.saliency * box).sum() / explained.saliency.sum() / box.mean()))

# At the last layer, the gradient of an averaged-then-Dense score is the Dense kernel over the positions:
# the backend's autodiff must give the class activation map.
clip = render_video("move_left", 5, 24, 64)[4:20:2]
last = model.backbone.layers[-1].name
explained = explain_clip(model, clip, layer=last)
encode, _ = split_at(model, last)
features = ops.convert_to_numpy(encode(ops.convert_to_tensor(clip[None])))[0]
kernel = ops.convert_to_numpy(model.get_layer("classifier").kernel)[:, explained.index]
cam = upsample(np.maximum(features @ kernel, 0), 8, 64)
cam = cam / cam.max()
print(json.dumps({{"ratios": ratios, "right": int(right), "cam_error": float(np.abs(cam - explained.saliency).max()),
                  "layer": explained.layer}}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_saliency_is_on_the_moving_object(motion_model, backend):
    """Grad-CAM of the top class puts its mass on the moving object: inside the object's box, well above
    the box's share of the frame (the static distractor and the background share the rest)."""
    script = "import numpy as np\n" + inspect.getsource(moving_boxes) + SALIENCY.format(model=str(motion_model))
    ran = run_on_backend(backend, script)
    assert ran["right"] >= 10, ran
    assert np.median(ran["ratios"]) >= 1.5, ran["ratios"]
    assert ran["cam_error"] < 1e-3 and ran["layer"] == "tail_relu"


def test_explain_writes_an_overlay_video_and_a_contact_sheet(motion_model, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    write_video(str(video), render_video("move_right", 4242, 30, 64), FPS)
    assert mfnet_cli.predict.main([str(video), "--model", str(motion_model), "--explain", "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)["explain"]
    assert explained["overlay"] == str(tmp_path / "clip.explain.mp4") and explained["layer"] == "conv4_B01"
    assert explained["label"] == "move_right" and 0.5 < explained["probability"] <= 1
    with av.open(explained["overlay"]) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (64, 64, 3)
    assert open(explained["sheet"], "rb").read(4) == b"\x89PNG"
    assert not os.path.exists(tmp_path / ".partial")


def test_explain_refuses_an_exported_model_in_one_line(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"not really")
    with pytest.raises(SystemExit) as raised:
        mfnet_cli.predict.main([str(tmp_path / "v.mp4"), "--model", str(tmp_path / "m.onnx"), "--explain"])
    assert raised.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("error: --explain takes VIDEO files and a .keras file or preset folder (it reads the Keras model)")
    )
