"""Export to LiteRT, ONNX and OpenVINO: each artefact reloaded by its own runtime alone in a fresh process, and
`predict` with every format."""

import json
import os
import sys
import textwrap

import numpy as np
import pytest
from commands import run_on_backend, run_without_project
from test_case import TINY_MFNET, build

import mfnet_cli.export
import mfnet_cli.predict
from mfnet_keras import export
from tfrecords_tools.video import write_video

NAMES = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
RUNTIME_FORMATS = ("litert", "onnx", "openvino")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small classifier with random weights and non-trivial BatchNorm statistics, in every format."""
    root = tmp_path_factory.mktemp("deploy")
    model = build("mfnet3d", num_classes=6, input_shape=(4, 32, 32, 3), class_names=NAMES, **TINY_MFNET)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if weight.path.endswith("moving_mean"):
            weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
        elif weight.path.endswith("moving_variance"):
            weight.assign(rng.uniform(0.5, 2.0, weight.shape).astype("float32"))
    model.save(root / "model.keras")
    paths = {"keras": str(root / "model.keras"), "tf_saved_model": str(root / "tf_saved_model")}
    for format in ("tf_saved_model", *RUNTIME_FORMATS):
        result = export.export(paths["keras"], str(root / format), format)
        paths[format] = os.path.dirname(result["model"]) if "model" in result else result["saved_model"]
    return model, paths, root


def runtime_outputs(paths, clips_path):
    """Each runtime's logits on the clips saved at `clips_path`, computed by the runtime alone in a fresh
    process without the project; also the LiteRT ops and which of our frameworks got imported."""
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        clips = np.load({str(clips_path)!r})
        out = {{}}
        from ai_edge_litert.interpreter import Interpreter  # no Flex delegate: built-in ops only
        interpreter = Interpreter({os.path.join(paths["litert"], "model.tflite")!r})
        interpreter.allocate_tensors()
        ops = sorted({{op["op_name"] for op in interpreter._get_ops_details()}})
        rows = []
        for clip in clips:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], clip[None])
            interpreter.invoke()
            rows.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].tolist())
        out["litert"], out["litert_ops"] = rows, ops
        import onnxruntime
        session = onnxruntime.InferenceSession({os.path.join(paths["onnx"], "model.onnx")!r})
        out["onnx"] = session.run(None, {{session.get_inputs()[0].name: clips}})[0].tolist()
        import openvino
        compiled = openvino.Core().compile_model(
            {os.path.join(paths["openvino"], "model.xml")!r}, "CPU", {{"INFERENCE_PRECISION_HINT": "f32"}}
        )
        out["openvino"] = compiled(clips)[0].tolist()
        out["loaded"] = sorted(m for m in ("tensorflow", "keras", "mfnet_keras") if m in sys.modules)
        print(json.dumps(out))
        """
    )
    return run_without_project(script)


def test_each_runtime_alone_gives_the_keras_outputs(exported):
    model, paths, root = exported
    clips = np.random.default_rng(1).integers(0, 256, (2, 4, 32, 32, 3)).astype("float32")
    np.save(root / "clips.npy", clips)
    got = runtime_outputs(paths, root / "clips.npy")
    assert got["loaded"] == []  # each runtime alone
    assert not [op for op in got["litert_ops"] if "FLEX" in op.upper()], got["litert_ops"]
    want = np.asarray(model(clips, training=False))
    for format in RUNTIME_FORMATS:
        error = np.abs(np.array(got[format]) - want).max() / np.abs(want).max()
        assert error <= 1e-4, (format, error)
    assert sorted(os.listdir(paths["openvino"])) == ["classifier.json", "model.bin", "model.xml"]
    sidecar = json.loads((root / "onnx" / export.SIDECAR).read_text())
    assert sidecar["class_names"] == NAMES and sidecar["preprocessor"]["crop_size"] == 32


def test_predict_gives_the_same_answer_with_every_format(exported, tmp_path, capsys):
    _, paths, _ = exported
    video = str(tmp_path / "v.mp4")
    write_video(video, np.random.default_rng(2).integers(0, 256, (20, 40, 52, 3)).astype("uint8"), fps=10)
    answers, runtimes = {}, {}
    # The .keras file by default runs on the fastest runtime installed (OpenVINO), once exported and cached.
    for format, path in [*paths.items(), ("keras-auto", paths["keras"])]:
        runtime = ["--runtime", "keras"] if format == "keras" else []
        assert mfnet_cli.predict.main([video, "--model", path, "--clips", "2", "--json", *runtime]) == 0, format
        result = json.loads(capsys.readouterr().out)
        answers[format], runtimes[format] = result["top_k"], result["runtime"]
    assert runtimes == {
        **dict(zip(paths, paths)),
        "keras": "keras",
        "tf_saved_model": "tensorflow",
        "keras-auto": "openvino",
    }
    assert len(os.listdir(os.path.join(os.environ["KERAS_HOME"], "mfnet_keras", "runtimes"))) == 1
    labels = {format: [item["label"] for item in top] for format, top in answers.items()}
    assert all(top == labels["keras"] for top in labels.values()), labels
    for format, top in answers.items():
        # OpenVINO runs at its default precision, bf16 on a CPU that has it; the others in float32.
        tolerance = 5e-3 if format in ("openvino", "keras-auto") else 1e-4
        got, want = [t["probability"] for t in top], [t["probability"] for t in answers["keras"]]
        np.testing.assert_allclose(got, want, atol=tolerance, err_msg=format)


def test_a_missing_runtime_or_exporter_is_one_line(exported, tmp_path, monkeypatch, capsys):
    _, paths, _ = exported
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert mfnet_cli.predict.main(["any.mp4", "--model", paths["onnx"]]) == 2
    assert capsys.readouterr().err == f"error: {paths['onnx']}/model.onnx needs onnxruntime: pip install onnxruntime\n"
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    assert mfnet_cli.export.main(["--weights", paths["keras"], "--out", str(tmp_path / "x"), "--format", "onnx"]) == 2
    assert capsys.readouterr().err == (
        "error: --format onnx needs tf2onnx: pip install tf2onnx (or 'mfnet-keras[export]')\n"
    )


def test_int8_models_are_integer_and_agree_with_keras(exported, demo_records, tmp_path):
    """Full-integer LiteRT and NNCF-quantised OpenVINO, calibrated on TFRecord clips: int8 convolutions (LiteRT:
    2D only), the head in float, and the Keras answers on clips of the same records (each runtime alone)."""
    model, paths, root = exported
    pattern = str(demo_records / "train-*.tfrecord")
    result = export.export(paths["keras"], str(tmp_path / "int8"), "litert", "int8", pattern, calibration_clips=8)
    openvino = export.export(paths["keras"], str(tmp_path / "ov8"), "openvino", "int8", pattern, calibration_clips=8)
    clips = np.concatenate(export.read_calibration_clips(model, str(demo_records / "test-*.tfrecord"), 6))
    np.save(tmp_path / "clips.npy", clips)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        interpreter = Interpreter({result["model"]!r})
        interpreter.allocate_tensors()
        tensors = {{t["index"]: t for t in interpreter.get_tensor_details()}}
        ops = interpreter._get_ops_details()
        def dtypes(op, kind):
            return sorted({{np.dtype(tensors[i]["dtype"]).name for i in op[kind] if i >= 0}})
        convs = {{json.dumps([dtypes(op, "inputs"), dtypes(op, "outputs")]) for op in ops if op["op_name"] == "CONV_2D"}}
        head = {{op["op_name"]: dtypes(op, "inputs") for op in ops if op["op_name"] in ("MEAN", "FULLY_CONNECTED")}}
        rows = []
        for clip in np.load({str(tmp_path / "clips.npy")!r}):
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], clip[None])
            interpreter.invoke()
            rows.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].tolist())
        names = sorted({{op["op_name"] for op in ops}})
        import openvino
        compiled = openvino.Core().compile_model({openvino["model"]!r}, "CPU", {{"INFERENCE_PRECISION_HINT": "f32"}})
        kinds = {{op.get_rt_info()["layerType"].astype(str): op.get_rt_info()["runtimePrecision"].astype(str)
                  for op in compiled.get_runtime_model().get_ops()}}
        ov_rows = [compiled(clip[None])[0][0].tolist() for clip in np.load({str(tmp_path / "clips.npy")!r})]
        print(json.dumps({{"logits": rows, "ops": names, "convs": sorted(convs), "head": head,
                          "openvino": ov_rows, "openvino_kinds": kinds}}))
        """
    )
    got = run_without_project(script)
    assert "CONV_3D" not in got["ops"] and not [op for op in got["ops"] if "FLEX" in op.upper()]
    assert [json.loads(c) for c in got["convs"]] == [[["int32", "int8"], ["int8"]]]  # int8 in, int32 bias, out
    assert got["head"] == {"MEAN": ["float32", "int32"], "FULLY_CONNECTED": ["float32"]}
    assert got["openvino_kinds"]["Convolution"] in ("u8", "i8") and got["openvino_kinds"]["FullyConnected"] == "f32"
    want = np.asarray(model(clips, training=False))
    for runtime in ("logits", "openvino"):
        logits = np.array(got[runtime])
        assert (logits.argmax(-1) == want.argmax(-1)).all(), runtime
        assert np.abs(logits - want).max() <= 0.05 * np.abs(want).max(), runtime
    for folder in ("int8", "ov8"):
        assert json.loads((tmp_path / folder / export.SIDECAR).read_text())["precision"] == "int8"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "onnx", "--precision", "int8"], "--precision int8 is for --format litert or openvino, not onnx"),
        (
            ["--format", "litert", "--precision", "int8"],
            "--precision int8 needs --calibration TFRecords; None matches no file",
        ),
        (
            ["--format", "litert", "--precision", "int8", "--calibration", "nowhere/*.tfrecord"],
            "--precision int8 needs --calibration TFRecords; 'nowhere/*.tfrecord' matches no file",
        ),
    ],
)
def test_bad_int8_arguments_are_one_line(exported, tmp_path, capsys, args, message):
    _, paths, _ = exported
    assert mfnet_cli.export.main(["--weights", paths["keras"], "--out", str(tmp_path / "x"), *args]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not os.path.exists(tmp_path / "x")


JAX_MODEL = """
import contextlib, io, json, os
import numpy as np
import keras
from mfnet_keras import models

keras.utils.set_random_seed(3)
backbone = models.MFNetBackbone(input_shape=(4, 32, 32, 3), **{tiny!r})
model = models.VideoClassifier(backbone, 6, class_names={names!r})
model.compile()
clips = np.load({clips!r})
model.fit(clips, np.arange(2), epochs=1, verbose=0)  # trained on JAX: BatchNorm statistics move too
model.save({path!r})
np.save({logits!r}, keras.ops.convert_to_numpy(model.predict(clips, verbose=0)))
import mfnet_cli.export  # the command line's main, in this JAX process: each format in a TensorFlow child

written = {{}}
for format in {formats!r}:
    argv = ["--weights", {path!r}, "--out", os.path.join({root!r}, format), "--format", format]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert mfnet_cli.export.main(argv) == 0, format
    written[format] = json.loads(printed.getvalue().strip().splitlines()[-1])
print(json.dumps({{"backend": keras.backend.backend(), "written": written}}))
"""


def test_a_model_trained_on_jax_exports_to_every_format_from_a_jax_process(tmp_path):
    clips = np.random.default_rng(4).integers(0, 256, (2, 4, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "clips.npy", clips)
    keras_file, logits = tmp_path / "jax_trained.keras", tmp_path / "logits.npy"
    formats = ["tf_saved_model", *RUNTIME_FORMATS]
    script = JAX_MODEL.format(
        tiny=TINY_MFNET,
        names=NAMES,
        clips=str(tmp_path / "clips.npy"),
        path=str(keras_file),
        logits=str(logits),
        formats=formats,
        root=str(tmp_path),
    )
    ran = run_on_backend("jax", script, tensorflow=True)  # exporting needs TensorFlow on the machine
    assert ran["backend"] == "jax"
    paths = {}
    for format, written in ran["written"].items():
        paths[format] = os.path.dirname(written["model"]) if "model" in written else written["saved_model"]
    got = runtime_outputs(paths, tmp_path / "clips.npy")
    want = np.load(logits)
    for format in RUNTIME_FORMATS:
        assert np.abs(np.array(got[format]) - want).max() <= 1e-4 * np.abs(want).max(), format
    script = f"import json, tensorflow as tf; m = tf.saved_model.load({paths['tf_saved_model']!r}); "
    script += f"import numpy as np; x = np.load({str(tmp_path / 'clips.npy')!r}).astype('uint8'); "
    script += "print(json.dumps(m.signatures['serving_default'](clips=tf.constant(x))['logits'].numpy().tolist()))"
    saved = np.array(run_without_project(script))
    assert np.abs(saved - want).max() <= 1e-4 * np.abs(want).max()
