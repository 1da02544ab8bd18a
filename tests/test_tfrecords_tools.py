"""tfrecords_tools: decoding, every layout, bad input, the reader round trip, kill and resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import tensorflow as tf
from video_files import write_noise_video

import mfnet_cli.inspect
import mfnet_cli.pack
from tfrecords_tools import pack, schema, synthetic
from tfrecords_tools.video import VideoError, decode_jpeg, decode_video, write_video

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(3)


def smooth_frames(n, height=48, width=64, seed=0):
    """Smooth colour gradients that move: compress well, so lossy round trips stay close."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 6, 3)
    frames = [
        np.stack([127 + 100 * np.sin(xx / 9 + yy / 13 + t / 2 + p) for p in phase], -1).astype(np.uint8)
        for t in range(n)
    ]
    return np.stack(frames)


def write_vfr(path, frames, times_ms):
    """An H.264 mp4 whose frames sit at the given (irregular) presentation times."""
    from fractions import Fraction

    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for image, t in zip(frames, times_ms):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_gray(path, n=3, width=171, height=128):
    with av.open(path, "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        for i in range(n):
            image = np.full((height, width), 40 * i + 20, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_rotated(path):
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    frames[:, :24, :32] = 255  # white top-left quarter
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # display: 90° counter-clockwise
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


GOOD_CODECS = [
    ("clip.mp4", "libx264", "yuv420p"),
    ("clip.avi", "mpeg4", "yuv420p"),
    ("clip.webm", "libvpx-vp9", "yuv420p"),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """`root/<class>/<video>` with good videos in several containers/codecs and every kind of bad file."""
    root = tmp_path_factory.mktemp("videos")
    sources = {}
    for c, label in enumerate(["jumping", "waving"]):
        os.makedirs(root / label)
        for i, (name, codec, pix_fmt) in enumerate(GOOD_CODECS):
            frames = smooth_frames(6, seed=10 * c + i)
            path = root / label / f"{i}_{name}"
            write_video(str(path), frames, fps=10, codec=codec, pix_fmt=pix_fmt)
            sources[f"{label}/{i}_{name}"] = frames
    write_gray(str(root / "jumping" / "gray_odd.mkv"))
    write_rotated(str(root / "jumping" / "rotated.mp4"))
    write_vfr(str(root / "waving" / "vfr.mp4"), smooth_frames(6, seed=7), [0, 40, 200, 260, 600, 700])
    write_video(str(root / "waving" / "one_frame.mp4"), smooth_frames(1, seed=8), fps=10)
    good = (root / "jumping" / "0_clip.mp4").read_bytes()
    (root / "waving" / "empty.mp4").write_bytes(b"")
    (root / "waving" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "waving" / "text.mp4").write_text("not a video\n")
    box = good.find(b"mdat") - 4  # the mp4 box holding the coded frames: zero its payload
    size = int.from_bytes(good[box : box + 4], "big")
    (root / "waving" / "no_frames.mp4").write_bytes(good[: box + 8] + bytes(size - 8) + good[box + size :])
    (root / "waving" / "notes.xyz").write_text("unknown extension")
    return root, sources


def run_pack(*args):
    return mfnet_cli.pack.main([str(a) for a in args])


def read_split(out_dir, split):
    """`{filename: (frames uint8 (T,H,W,3), context dict)}` of every record of a split."""
    records = {}
    for path in sorted(out_dir.glob(f"{split}-*.tfrecord")):
        for serialized in tf.data.TFRecordDataset(str(path)):
            images, context = schema.parse_sequence_example(serialized)
            frames = np.stack([decode_jpeg(j) for j in images.numpy()])
            ctx = {k: (v.numpy().decode() if v.dtype == tf.string else v.numpy().tolist()) for k, v in context.items()}
            records[ctx[schema.FILENAME]] = (frames, ctx)
    return records


def test_decode_handles_odd_gray_rotated_and_vfr(dataset):
    root, _ = dataset
    frames = decode_video(str(root / "jumping" / "gray_odd.mkv")).frames
    assert len(frames) == 3 and frames[0].shape == (128, 171, 3)
    assert np.all(frames[1] == 60)  # grey 60 in every RGB channel
    frames = decode_video(str(root / "jumping" / "rotated.mp4")).frames
    assert frames[0].shape == (64, 48, 3)  # upright: width and height swapped
    assert frames[0][-8:, :8].mean() > 200 and frames[0][:8, :8].mean() < 50  # top-left went bottom-left
    video = decode_video(str(root / "waving" / "vfr.mp4"), fps=5)
    assert video.fps == 5 and len(video.frames) == 4  # frames at 0, 200, 600, 700 ms are 200 ms apart or more
    frames = decode_video(str(root / "jumping" / "0_clip.mp4"), short_side=24, max_frames=4).frames
    assert len(frames) == 4 and frames[0].shape == (24, 32, 3)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty.mp4", "empty file (0 bytes)"),
        ("truncated.mp4", "truncated: the file ends at byte "),
        ("text.mp4", "not a video: Invalid data found when processing input"),
        ("no_frames.mp4", "corrupt frames: no frame decoded, "),
        ("notes.xyz", "unsupported extension '.xyz'"),
    ],
)
def test_bad_videos_raise_video_error(dataset, name, reason):
    root, _ = dataset
    with pytest.raises(VideoError) as error:
        decode_video(str(root / "waving" / name))
    assert str(error.value).startswith(reason)


def test_folders_pack_round_trip_and_skips(dataset, tmp_path, capsys):
    root, sources = dataset
    out = tmp_path / "out"
    assert run_pack(root, out, "--layout", "folders", "--short-side", "0", "--shards", "2", "--workers", "2") == 0
    captured = capsys.readouterr()
    assert "packed 10 videos" in captured.out and "skipped 5" in captured.out
    skipped_lines = captured.err.split("warning: skipped 5 video(s):\n")[1].splitlines()[:5]
    assert [line.split(":")[0].strip() for line in skipped_lines] == [
        f"waving/{n}" for n in ("empty.mp4", "no_frames.mp4", "notes.xyz", "text.mp4", "truncated.mp4")
    ]
    assert "  waving/text.mp4: not a video: Invalid data found when processing input" in skipped_lines
    rates = re.findall(r"(\d+\.\d)(?:video/s| videos/s)", captured.err + captured.out)
    assert len(set(rates)) == 1, rates  # the progress bar and the summary give one speed
    manifest = json.loads((out / "manifest.json").read_text())
    split = manifest["splits"]["train"]
    assert split["videos"] == 10 and split["shards"] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    assert {s["path"] for s in split["skipped"]} == {
        f"waving/{n}" for n in ("empty.mp4", "truncated.mp4", "text.mp4", "no_frames.mp4", "notes.xyz")
    }
    assert (out / "labels.txt").read_text() == "jumping\nwaving\n"
    assert not list((out / pack.STATE_DIR).glob("*.tmp"))
    records = read_split(out, "train")
    assert len(records) == 10
    for name, want in sources.items():  # lossy codec + JPEG: close, not equal
        frames, ctx = records[name]
        assert frames.shape == want.shape
        assert np.abs(frames.astype(int) - want).mean() < 6, name
        assert ctx[schema.LABEL_INDEX] == [["jumping", "waving"].index(name.split("/")[0])]
        assert ctx[schema.LABEL_TEXT] == name.split("/")[0]
        assert ctx[schema.NUM_FRAMES] == 6 and ctx[schema.FPS] == 10
    gray, ctx = records["jumping/gray_odd.mkv"]
    assert gray.shape == (3, 128, 171, 3) and ctx[schema.HEIGHT] == 128 and ctx[schema.WIDTH] == 171
    assert records["jumping/rotated.mp4"][0].shape == (3, 64, 48, 3)
    assert records["waving/one_frame.mp4"][0].shape[0] == 1
    assert run_pack(root, tmp_path / "strict", "--strict", "--workers", "1") == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: --strict: 5 video(s) were skipped (listed above), so the exit code is 1"
    )


def test_records_parse_with_model_garden_keys(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "out"
    run_pack(root, out, "--short-side", "32", "--max-frames", "2", "--workers", "1")
    serialized = next(iter(tf.data.TFRecordDataset(str(next(out.glob("train-*.tfrecord"))))))
    # The feature keys TF Model Garden's video_input and DMVR read.
    context, sequence = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            "clip/label/index": tf.io.FixedLenFeature([], tf.int64),
            "clip/label/text": tf.io.FixedLenFeature([], tf.string),
            "clip/label/string": tf.io.FixedLenFeature([], tf.string),
            "video/filename": tf.io.FixedLenFeature([], tf.string),
        },
        sequence_features={"image/encoded": tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    assert sequence["image/encoded"].shape == (2,)
    assert tf.io.decode_jpeg(sequence["image/encoded"][0]).shape[0] == 32
    assert context["clip/label/text"] == context["clip/label/string"]


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def tiny_video(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(str(path), smooth_frames(2, 32, 32, seed), fps=5)


def test_ucf101_layout(tmp_path):
    root = tmp_path / "ucf"
    for c in ("ApplyEyeMakeup", "Archery"):
        for g in (1, 2):
            tiny_video(root / "videos" / c / f"v_{c}_g0{g}_c01.avi")
    write_lines(root / "splits" / "classInd.txt", ["1 ApplyEyeMakeup", "2 Archery"])
    write_lines(
        root / "splits" / "trainlist01.txt",
        [f"{c}/v_{c}_g01_c01.avi {i}" for i, c in ((1, "ApplyEyeMakeup"), (2, "Archery"))],
    )
    write_lines(root / "splits" / "testlist01.txt", [f"{c}/v_{c}_g02_c01.avi" for c in ("ApplyEyeMakeup", "Archery")])
    # classInd/lists name paths relative to the video folder
    out = tmp_path / "out"
    assert run_pack(root / "videos", out, "--layout", "ucf101", "--workers", "1") == 2  # lists not under videos/
    (root / "videos" / "splits").mkdir()
    for f in (root / "splits").iterdir():
        (root / "videos" / "splits" / f.name).write_text(f.read_text())
    assert run_pack(root / "videos", out, "--layout", "ucf101", "--workers", "1") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["ApplyEyeMakeup", "Archery"]
    assert {k: v["videos"] for k, v in manifest["splits"].items()} == {"train": 2, "test": 2}


def test_hmdb51_layout(tmp_path):
    root = tmp_path / "hmdb"
    for c in ("brush_hair", "cartwheel"):
        for v in ("a", "b", "c"):
            tiny_video(root / c / f"{c}_{v}.avi")
        write_lines(root / "splits" / f"{c}_test_split1.txt", [f"{c}_a.avi 1 ", f"{c}_b.avi 2 ", f"{c}_c.avi 0 "])
    out = tmp_path / "out"
    assert run_pack(root, out, "--layout", "hmdb51", "--workers", "1") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["classes"] == {"brush_hair": 1, "cartwheel": 1}
    assert manifest["splits"]["test"]["videos"] == 2


def test_kinetics_layout_per_class_and_flat(tmp_path):
    root = tmp_path / "k400"
    write_lines(
        root / "kinetics400_val.csv",
        [
            "label,youtube_id,time_start,time_end,split",
            "abseiling,abc123,10,20,val",
            "air drumming,xyz789,0,10,val",
            "air drumming,gone00,5,15,val",
        ],
    )
    tiny_video(root / "abseiling" / "abc123_000010_000020.mp4")
    tiny_video(root / "xyz789_000000_000010.mp4")  # flat
    out = tmp_path / "out"
    assert run_pack(root, out, "--layout", "kinetics", "--workers", "1") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["abseiling", "air drumming"]
    assert manifest["splits"]["val"]["videos"] == 2
    assert manifest["splits"]["val"]["skipped"] == [{"path": "gone00_000005_000015", "reason": "not found on disk"}]


def test_list_layout_csv_and_tsv(tmp_path):
    root = tmp_path / "lists"
    tiny_video(root / "a" / "1.mp4")
    tiny_video(root / "b" / "2.mp4")
    write_lines(root / "train.csv", ["path,label", "a/1.mp4,alpha", "b/2.mp4,beta"])
    write_lines(root / "val.tsv", ["a/1.mp4\talpha"])
    out = tmp_path / "out"
    assert run_pack(root, out, "--layout", "list", "--workers", "1") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["splits"]) == ["train", "val"] and manifest["splits"]["val"]["videos"] == 1


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t: [t / "missing", t / "out"], "error: source {t}/missing does not exist"),
        (
            lambda t: [t / "bad.csv", t / "out", "--layout", "list"],
            "error: split 'bad' names 1 file(s) that do not exist under {t}, e.g. 'nope.mp4'",
        ),
    ],
)
def test_source_errors_exit_2_and_write_nothing(tmp_path, capsys, make_args, message):
    write_lines(tmp_path / "bad.csv", ["nope.mp4,x"])
    assert run_pack(*make_args(tmp_path)) == 2
    assert capsys.readouterr().err.strip() == message.format(t=tmp_path)
    assert not (tmp_path / "out").exists()


def test_unknown_layout_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_pack(tmp_path, tmp_path / "out", "--layout", "youtube")
    assert exit_info.value.code == 2
    assert "invalid choice: 'youtube'" in capsys.readouterr().err


def test_refuses_to_overwrite_without_resume(dataset, tmp_path, capsys):
    root, _ = dataset
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert run_pack(root, tmp_path / "out") == 2
    assert "pass --resume" in capsys.readouterr().err


def shard_bytes(out_dir):
    return {p.name: p.read_bytes() for p in sorted(out_dir.glob("*.tfrecord"))}


def test_kill_and_resume_gives_the_same_records(tmp_path):
    source = tmp_path / "syn"
    synthetic.generate(str(source), seed=1, train_per_class=3, test_per_class=0, frames=48, size=128, workers=1)
    args = ["--layout", "list", "--shards", "6", "--workers", "1", "--short-side", "128"]
    reference = tmp_path / "reference"
    assert run_pack(source, reference, *args) == 0

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "mfnet_cli.pack", str(source), str(out), *args]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "train-00000-of-00006.tfrecord"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = shard_bytes(out)
    assert first.name in done and len(done) < 6, "kill should land mid-run"
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}

    assert run_pack(source, out, *args, "--resume") == 0
    assert shard_bytes(out) == shard_bytes(reference)
    assert {name: (out / name).stat().st_mtime_ns for name in done} == mtimes  # finished shards not redone
    want = json.loads((reference / "manifest.json").read_text())
    got = json.loads((out / "manifest.json").read_text())
    assert got["splits"] == want["splits"]


def test_synthetic_is_deterministic_and_motion_only():
    a = synthetic.render_video("move_left", seed=5)
    b = synthetic.render_video("move_left", seed=5)
    np.testing.assert_array_equal(a, b)
    # Same seed, opposite motion: the same pictures in reverse order, so no single frame tells them apart.
    for a, b in [("move_left", "move_right"), ("rotate_cw", "rotate_ccw"), ("grow", "shrink")]:
        forward, backward = synthetic.render_video(a, 9), synthetic.render_video(b, 9)
        np.testing.assert_array_equal(forward, backward[::-1])
        assert not np.array_equal(forward[0], forward[-1])


def test_synthetic_textures_have_contrast():
    # A disc rotates visibly only through its texture, so no texture is nearly one colour.
    # Two colours at distance d mixed half and half spread the pixels by d / 2 along their difference.
    rng = np.random.default_rng(0)
    spreads = []
    for _ in range(300):
        pixels = synthetic._texture(rng, 32).reshape(-1, 3)
        spreads.append(np.linalg.svd(pixels - pixels.mean(axis=0), compute_uv=False)[0] / np.sqrt(len(pixels)))
    assert min(spreads) > 0.3 * synthetic.MIN_CONTRAST


def test_inspect_verify_and_contact_sheet(dataset, tmp_path, capsys):
    root, _ = dataset
    out = tmp_path / "out"
    run_pack(root, out, "--short-side", "32", "--workers", "1")
    sheet = tmp_path / "sheet.png"
    assert mfnet_cli.inspect.main([str(out), "--verify", "--contact-sheet", str(sheet), "--clips", "3"]) == 0
    text = capsys.readouterr().out
    assert "train: 10 videos in 1 shard(s), 2 classes" in text and "verify: OK" in text
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["splits"]["train"]["videos"] = 12
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert mfnet_cli.inspect.main([str(out), "--verify"]) == 1
    assert "manifest says 12 videos" in capsys.readouterr().err


def test_non_square_pixels_are_packed_at_display_aspect(tmp_path):
    root = tmp_path / "videos"
    (root / "tv").mkdir(parents=True)
    write_noise_video(root / "tv" / "anamorphic.mp4", 4, sar="4/3")  # 96x64 coded, 128x64 displayed
    write_noise_video(root / "tv" / "square.mp4", 4)
    video = decode_video(str(root / "tv" / "anamorphic.mp4"))
    assert str(video.sample_aspect_ratio) == "4/3" and video.frames[0].shape == (64, 128, 3)
    out = tmp_path / "out"
    assert run_pack(root, out, "--short-side", "48", "--workers", "1") == 0
    records = read_split(out, "train")
    frames, ctx = records["tv/anamorphic.mp4"]
    assert frames.shape[1] == 48 and abs(frames.shape[2] / frames.shape[1] / 2.0 - 1) < 0.02
    assert (ctx[schema.HEIGHT], ctx[schema.WIDTH]) == (48, 96)
    assert records["tv/square.mp4"][0].shape[1:3] == (48, 72)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["non_square_pixels"] == [
        {"path": "tv/anamorphic.mp4", "sample_aspect_ratio": "4:3"}
    ]


@pytest.fixture(scope="module")
def cut_videos(tmp_path_factory):
    """A faststart mp4 (index first) and an AVI (index last), whole and cut at 10/30/60/90 % of their bytes."""
    root = tmp_path_factory.mktemp("cut")
    (root / "clips").mkdir()
    whole = {"fast.mp4": 300, "old.avi": 164}
    write_noise_video(root / "clips" / "fast.mp4", 300, faststart=True)
    write_noise_video(root / "clips" / "old.avi", 164, codec="mpeg4")
    cut = []
    for name in whole:
        data = (root / "clips" / name).read_bytes()
        assert name != "fast.mp4" or data.find(b"moov") < data.find(b"mdat")  # faststart: index before frames
        for percent in (10, 30, 60, 90):
            stem, ext = os.path.splitext(name)
            path = root / "clips" / f"{stem}_cut{percent}{ext}"
            path.write_bytes(data[: len(data) * percent // 100])
            cut.append(path.name)
    return root, whole, cut


def test_truncated_videos_are_skipped_or_kept_partial(cut_videos, tmp_path, capsys):
    root, whole, cut = cut_videos
    out = tmp_path / "out"
    assert run_pack(root, out, "--short-side", "32", "--workers", "2") == 0
    split = json.loads((out / "manifest.json").read_text())["splits"]["train"]
    assert {s["path"]: s["reason"].split(":")[0] for s in split["skipped"]} == {f"clips/{n}": "truncated" for n in cut}
    assert any(re.fullmatch(r"truncated: decoded \d+ of 300 frames; .*", s["reason"]) for s in split["skipped"])
    records = read_split(out, "train")
    assert {name: ctx[schema.NUM_FRAMES] for name, (_, ctx) in records.items()} == {
        f"clips/{n}": count for n, count in whole.items()
    }
    capsys.readouterr()

    kept = tmp_path / "kept"
    assert run_pack(root, kept, "--short-side", "32", "--workers", "2", "--keep-partial") == 0
    err = capsys.readouterr().err
    split = json.loads((kept / "manifest.json").read_text())["splits"]["train"]
    assert split["videos"] == 10 and not split["skipped"]
    assert sorted(p["path"] for p in split["partial"]) == sorted(f"clips/{n}" for n in cut)
    assert "warning: kept partial (--keep-partial) 8 video(s):" in err
    assert all(f"  clips/{n}: truncated" in err for n in cut)


def test_pack_dataset_takes_keyword_options_and_checks_them(tmp_path):
    with pytest.raises(pack.UsageError) as error:
        pack.pack_dataset(tmp_path, tmp_path / "out", short_side=-1)
    assert str(error.value) == "`short_side` must be >= 0, got -1"
    with pytest.raises(pack.UsageError) as error:
        pack.pack_dataset(tmp_path, tmp_path / "out", short_sid=128)
    assert str(error.value).startswith("unknown pack option 'short_sid'; expected some of ['fps', ")
    assert not (tmp_path / "out").exists()  # nothing written
