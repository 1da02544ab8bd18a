"""Export (every signature after a fresh-process reload with TensorFlow alone) and the predict CLI."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from commands import run_without_project
from test_case import build
from video_files import write_noise_video

import mfnet_cli.export
import mfnet_cli.predict
from mfnet_keras.export import export_saved_model
from tfrecords_tools import schema
from tfrecords_tools.video import encode_jpeg, write_video

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
RNG = np.random.default_rng(4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = build("mfnet3d", num_classes=6, input_shape=(4, 32, 32, 3), class_names=NAMES)
    out = str(root / "saved_model")
    export_saved_model(model, out)
    return model, out, root


def test_every_signature_after_a_fresh_process_reload(exported):
    model, out, root = exported
    clips = RNG.integers(0, 256, (3, 4, 32, 32, 3)).astype("uint8")
    large = RNG.integers(0, 256, (2, 4, 40, 52, 3)).astype("uint8")  # resized and cropped inside
    np.save(root / "large.npy", large)
    frames = [RNG.integers(0, 256, (36, 48, 3)).astype("uint8") for _ in range(6)]
    serialized = schema.make_sequence_example([encode_jpeg(f, 95) for f in frames], 1, "beta", "v.mp4", 10, 36, 48)
    np.save(root / "clips.npy", clips)
    (root / "example.bin").write_bytes(serialized)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({out!r})
        clips = np.load({str(root / "clips.npy")!r})
        large = np.load({str(root / "large.npy")!r})
        out = {{
            "default": loaded.signatures["serving_default"](clips=tf.constant(clips)),
            "float": loaded.signatures["serve_float"](clips=tf.constant(clips.astype("float32"))),
            "large": loaded.signatures["serving_default"](clips=tf.constant(large)),
            "examples": loaded.signatures["serve_examples"](serialized=tf.constant([open({str(root / "example.bin")!r}, "rb").read()])),
        }}
        result = {{k: {{n: t.numpy().tolist() if t.dtype != tf.string else [[s.decode() for s in row] for row in t.numpy()]
                       for n, t in v.items()}} for k, v in out.items()}}
        result["labels"] = open({out!r} + "/assets/labels.txt").read().split()
        result["mfnet_keras_imported"] = "mfnet_keras" in sys.modules or "keras" in sys.modules
        print(json.dumps(result))
        """
    )
    got = run_without_project(script)
    assert got["labels"] == NAMES
    want = np.asarray(model(clips, training=False))
    np.testing.assert_allclose(got["large"]["logits"], np.asarray(model(large, training=False)), atol=1e-5)
    for key in ("default", "float"):
        np.testing.assert_allclose(got[key]["logits"], want, atol=1e-5)
        probabilities = np.array(got[key]["probabilities"])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        top = np.argsort(-probabilities, axis=1)[:, :5]
        assert got[key]["top_k_indices"] == top.tolist()
        assert got[key]["top_k_names"] == [[NAMES[i] for i in row] for row in top]
    assert np.array(got["examples"]["logits"]).shape == (1, 6)


def test_saved_model_cli_lists_the_signatures(exported):
    _, out, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "show", "--dir", out, "--all"], capture_output=True, text=True, timeout=300)
    for name in ("serving_default", "serve_float", "serve_examples"):
        assert f"signature_def['{name}']" in result.stdout


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good = []
    for i in range(2):
        path = root / f"good{i}.mp4"
        write_video(str(path), RNG.integers(0, 256, (30, 48, 64, 3)).astype("uint8"), fps=10)
        good.append(str(path))
    bad = root / "bad.mp4"
    bad.write_text("not a video")
    return good, str(bad)


def test_predict_json_schema_and_bad_file(exported, videos, capsys):
    _, out, _ = exported
    good, bad = videos
    code = mfnet_cli.predict.main([good[0], bad, good[1], "--model", out, "--clips", "3", "--top-k", "3", "--json"])
    assert code == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["video"] for line in lines] == [good[0], bad, good[1]]
    assert lines[1] == {"video": bad, "error": "not a video: Invalid data found when processing input"}
    for line in (lines[0], lines[2]):
        assert set(line) == {"video", "runtime", "frames", "fps", "width", "height", "top_k"}
        assert line["runtime"] == "tensorflow"  # a SavedModel
        assert line["frames"] == 30 and line["fps"] == 10
        assert (line["width"], line["height"]) == (50, 36)  # 64x48 at a short side of 37 (32 x 256 / 224), even
        assert [set(item) for item in line["top_k"]] == [{"label", "index", "probability"}] * 3
        probabilities = [item["probability"] for item in line["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True) and all(0 <= p <= 1 for p in probabilities)
        assert all(item["label"] == NAMES[item["index"]] for item in line["top_k"])


def test_predict_text_timeline_and_keras_model(exported, videos, tmp_path, capsys):
    model, out, _ = exported
    good, _ = videos
    plots = tmp_path / "plots"
    assert (
        mfnet_cli.predict.main([good[0], "--model", out, "--clips", "2", "--timeline", "1", "--output", str(plots)])
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith(f"{good[0]} (30 frames at 10.0 fps)") and "  1. " in text
    windows, segments = text.split("  segments:\n")
    assert windows.count(" s  ") == 3  # three 1-second windows
    assert 1 <= segments.count(" s  ") <= 3 and segments.strip().endswith(f"plot: {plots}/good0.timeline.png")
    keras_path = tmp_path / "model.keras"
    model.save(keras_path)
    assert (
        mfnet_cli.predict.main([good[0], "--model", str(keras_path), "--clips", "2", "--json", "--runtime", "keras"])
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)["top_k"]) == 5


def test_a_keras_file_or_a_preset_folder_alone_exports_and_predicts(exported, videos, tmp_path, capsys):
    """No config, labels file or run folder: the classifier carries its class names and preprocessing."""
    model, saved_model, _ = exported
    good, _ = videos
    model.save(tmp_path / "model.keras")
    model.save_to_preset(str(tmp_path / "preset"))
    tops = []
    for source in (str(tmp_path / "model.keras"), str(tmp_path / "preset")):
        out = tmp_path / f"out_{len(tops)}"
        assert mfnet_cli.export.main(["--weights", source, "--out", str(out)]) == 0
        assert (out / "saved_model.pb").exists() and (out / "model.keras").exists()
        assert (out / "assets" / "labels.txt").read_text().split() == NAMES
        capsys.readouterr()
        for predictor in (source, str(out)):
            assert (
                mfnet_cli.predict.main([good[0], "--model", predictor, "--clips", "2", "--json", "--runtime", "keras"])
                == 0
            )
            tops.append(json.loads(capsys.readouterr().out)["top_k"])
    assert mfnet_cli.predict.main([good[0], "--model", saved_model, "--clips", "2", "--json"]) == 0
    tops.append(json.loads(capsys.readouterr().out)["top_k"])
    assert all([t["label"] for t in top] == [t["label"] for t in tops[0]] for top in tops), tops
    for top in tops:
        np.testing.assert_allclose([t["probability"] for t in top], [t["probability"] for t in tops[0]], atol=1e-5)
    assert mfnet_cli.export.main(["--weights", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "x")]) == 2


def test_predict_sees_display_aspect_and_warns_on_truncated_video(exported, tmp_path, capsys):
    _, out, _ = exported
    write_noise_video(tmp_path / "tv.mp4", 8, sar="4/3")  # 96x64 coded, 128x64 displayed
    write_noise_video(tmp_path / "whole.mp4", 60, faststart=True)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
    paths = [str(tmp_path / name) for name in ("tv.mp4", "cut.mp4")]
    assert mfnet_cli.predict.main([*paths, "--model", out, "--clips", "2", "--json"]) == 0
    captured = capsys.readouterr()
    tv, cut = (json.loads(line) for line in captured.out.strip().splitlines())
    # 2:1 displayed; at this model's 37-pixel short side, even sizes (74x36) leave 2.8 % of rounding
    assert abs(tv["width"] / tv["height"] / 2.0 - 1) < 0.03 and "warning" not in tv
    assert cut["warning"].startswith("truncated: decoded ") and cut["frames"] < 60
    assert captured.err.strip() == f"warning: {paths[1]}: {cut['warning']}; classified from the frames that decode"


def test_signatures_check_their_input_and_never_crash(exported):
    _, out, root = exported
    good = [encode_jpeg(RNG.integers(0, 256, (36, 48, 3)).astype("uint8"), 95) for _ in range(6)]
    examples = [
        schema.make_sequence_example(good, 1, "beta", "ok.mp4", 10, 36, 48),
        b"not a proto",
        schema.make_sequence_example([good[0][:100]] * 6, 1, "beta", "cut.mp4", 10, 36, 48),
    ]
    (root / "examples.json").write_text(json.dumps([e.hex() for e in examples]))
    script = textwrap.dedent(
        f"""
        import json
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({out!r})
        examples = [bytes.fromhex(e) for e in json.load(open({str(root / "examples.json")!r}))]
        cases = {{
            "rank": ("serving_default", np.zeros((2, 32, 32, 3), np.uint8)),
            "length": ("serving_default", np.zeros((2, 3, 32, 32, 3), np.uint8)),
            "size": ("serving_default", np.zeros((2, 4, 16, 16, 3), np.uint8)),
            "dtype": ("serving_default", np.zeros((2, 4, 32, 32, 3), np.float32)),
            "float_rank": ("serve_float", np.zeros((4, 32, 32, 3), np.float32)),
            "float_size": ("serve_float", np.zeros((1, 4, 32, 33, 3), np.float32)),
            "empty": ("serving_default", np.zeros((0, 4, 32, 32, 3), np.uint8)),
            "float_empty": ("serve_float", np.zeros((0, 4, 32, 32, 3), np.float32)),
            "examples_empty": ("serve_examples", np.zeros((0,), object)),
            "not_a_proto": ("serve_examples", np.array(examples[:2], object)),
            "corrupt_jpeg": ("serve_examples", np.array([examples[0], examples[2]], object)),
        }}
        results = {{}}
        for run in range(20):
            for case, (name, value) in cases.items():
                key = "serialized" if name == "serve_examples" else "clips"
                try:
                    outputs = loaded.signatures[name](**{{key: tf.constant(value)}})
                    results[case] = ["ok", list(outputs["logits"].shape), list(outputs["top_k_names"].shape)]
                except (tf.errors.InvalidArgumentError, TypeError, ValueError) as error:
                    results[case] = ["error", " ".join(str(error).split())[:1500]]
        print(json.dumps(results))
        """
    )
    got = run_without_project(script, timeout=600)  # a crash would end the process
    for case, shape in (("rank", "2 32 32 3"), ("length", "2 3 32 32 3")):
        assert got[case][0] == "error"
        assert f"clips must be uint8 [batch, 4, height, width, 3]; got shape] [{shape}]" in got[case][1], got[case]
    assert "clips must be float32 [batch, 4, height, width, 3]; got shape] [4 32 32 3]" in got["float_rank"][1]
    assert got["size"] == ["ok", [2, 6], [2, 5]] and got["float_size"] == ["ok", [1, 6], [1, 5]]  # resized inside
    assert got["dtype"][0] == "error" and "was expected to be a uint8 tensor but is a float tensor" in got["dtype"][1]
    for case in ("empty", "float_empty", "examples_empty"):
        assert got[case] == ["ok", [0, 6], [0, 5]], case
    assert got["not_a_proto"][0] == "error" and "Invalid protocol message input, example id: 1" in got["not_a_proto"][1]
    assert "[serve_examples: example] [1] [has a corrupt JPEG frame]" in got["corrupt_jpeg"][1]
