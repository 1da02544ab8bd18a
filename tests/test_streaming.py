"""`predict --stream`: a long synthetic video whose motion changes class halfway, from a file and over HTTP,
with `--overlay`."""

import json
import os
import re
import shutil

import av
import keras
import numpy as np
import pytest
from commands import HttpServer
from test_case import TINY_MFNET, build

import mfnet_cli.predict
from mfnet_keras import inference
from tfrecords_tools.synthetic import render_video
from tfrecords_tools.video import write_video

CLASSES = ["move_left", "move_right"]
CLIP, SIZE, INTERVAL, HALF, FPS = 4, 32, 2, 40, 12


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """`(video path, model path)`: HALF frames moving left then HALF moving right (one scene each), and a small
    classifier fitted to every clip lying wholly inside one half (so its labels are right on this video:
    the test is about the streaming, not about generalising)."""
    root = tmp_path_factory.mktemp("stream")
    frames = np.concatenate([render_video(label, 3, frames=HALF, size=SIZE) for label in CLASSES])
    write_video(str(root / "long.mp4"), frames, fps=FPS, options={"crf": "10"})
    span = (CLIP - 1) * INTERVAL + 1
    starts = [s for s in range(len(frames) - span + 1) if not s < HALF <= s + span - 1]
    clips = np.stack([frames[s : s + span : INTERVAL] for s in starts]).astype("float32")
    labels = np.array([int(s >= HALF) for s in starts])
    keras.utils.set_random_seed(0)
    shape = (CLIP, SIZE, SIZE, 3)
    model = build(
        "mfnet3d",
        num_classes=2,
        input_shape=shape,
        class_names=CLASSES,
        frame_interval=INTERVAL,
        short_side=SIZE,
        **TINY_MFNET,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(clips, labels, batch_size=16, epochs=10, verbose=0)
    assert (model.predict(clips, verbose=0).argmax(-1) == labels).all()
    model.save(root / "model.keras")
    return str(root / "long.mp4"), str(root / "model.keras")


def stream(capsys, source, model, *extra):
    code = mfnet_cli.predict.main(["--stream", source, "--model", model, "--stride", "2", "--top-k", "2", *extra])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_the_label_follows_the_change_and_the_overlay_has_every_frame(long_video, tmp_path, capsys):
    video, model = long_video
    code, windows, err = stream(capsys, video, model, "--smooth", "2", "--overlay", str(tmp_path / "out.mp4"))
    assert code == 0, err
    change = HALF / FPS
    before = [w for w in windows if w["end"] <= change + 1e-6]
    after = [w for w in windows if w["start"] >= change - 1e-6]
    assert before and len(after) >= 3
    assert all(w["top_k"][0]["label"] == "move_left" for w in before)
    # Within two windows of the change: by the second window lying wholly after it, and from then on.
    first_right = next(i for i, w in enumerate(windows) if w["top_k"][0]["label"] == "move_right")
    assert windows[first_right]["end"] <= after[1]["end"]
    assert all(w["top_k"][0]["label"] == "move_right" for w in windows[first_right:])
    assert [w["end"] - w["start"] for w in windows] == pytest.approx(
        [((CLIP - 1) * INTERVAL + 1) / FPS] * len(windows), abs=1e-3
    )
    assert "stream: 80 frames" in err and "0 dropped" in err
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]  # written under .partial/, then moved
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 2 * HALF and frames[0].shape == (SIZE, SIZE, 3)


def test_a_stream_over_http_counts_what_it_drops(long_video, tmp_path, capsys):
    video, model = long_video
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(video, served / "live.mp4")
    server = HttpServer(str(served))
    try:
        code, windows, err = stream(capsys, f"{server.url}/live.mp4", model)
    finally:
        server.close()
    assert code == 0, err
    assert windows and all("dropped" in w for w in windows)
    frames, count, dropped = map(int, re.search(r"stream: (\d+) frames, (\d+) windows, (\d+) dropped", err).groups())
    assert frames + dropped == 2 * HALF and count == len(windows)


def test_a_missing_source_is_one_line(long_video, tmp_path, capsys):
    _, model = long_video
    code, windows, err = stream(capsys, str(tmp_path / "nope.mp4"), model)
    assert (code, windows) == (2, [])
    assert err.strip().splitlines()[-1] == f"error: {tmp_path / 'nope.mp4'}: no such file"
    assert not os.path.exists(tmp_path / "nope.mp4")


def test_an_overlay_that_cannot_be_written_is_one_line_and_leaves_nothing(long_video, tmp_path, capsys):
    _, model = long_video
    (tmp_path / "file").write_text("")
    code, _, err = stream(capsys, long_video[0], model, "--overlay", str(tmp_path / "file" / "out.mp4"))
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"error: cannot write --overlay {tmp_path / 'file' / 'out.mp4'}: ")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_ctrl_c_stops_cleanly_with_the_overlay_finished(long_video, tmp_path, capsys, monkeypatch):
    video, model = long_video
    probabilities, calls = inference.Classifier.probabilities, []

    def interrupted_at_the_fifth_window(self, clips):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return probabilities(self, clips)

    monkeypatch.setattr(inference.Classifier, "probabilities", interrupted_at_the_fifth_window)
    code, windows, err = stream(capsys, video, model, "--overlay", str(tmp_path / "out.mp4"))
    assert (code, len(windows)) == (130, 4)
    frames = int(re.search(r"stream: (\d+) frames, 4 windows, 0 dropped;.* \(interrupted\)", err).group(1))
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames - 1  # all but the frame being classified
