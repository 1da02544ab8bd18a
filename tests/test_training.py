"""Training and evaluation: configs, metrics, kill -9 and resume, synchronized BatchNorm, the optimizer."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import yaml
from test_case import TINY_MFNET, build

import mfnet_cli.evaluate
import mfnet_cli.train
from mfnet_keras import evaluate, train, training_data
from mfnet_keras.config import ConfigError, list_configs, load_config
from mfnet_keras.optimizers import SGD
from mfnet_keras.schedules import EpochSchedule
from mfnet_keras.strategy import cpu_has_bfloat16

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def records(demo_records):
    return demo_records


def tiny_config(tmp_path, records, **train_overrides):
    config = {
        "model": {"name": "mfnet3d", "clip_length": 4, "crop_size": 32, "options": TINY_MFNET},
        "data": {"train": f"{records}/train-*.tfrecord", "eval": f"{records}/test-*.tfrecord", "flip": False},
        "train": {
            "epochs": 2,
            "batch_size": 4,
            "base_lr": 0.01,
            "base_batch_size": 4,
            "save_every_steps": 2,
            **train_overrides,
        },
        "eval": {"num_clips": 2, "num_crops": 1, "batch_size": 4},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epoch=3"], "config error: unknown key train.epoch (did you mean train.epochs?)"),
        (["train.epochs=three"], "config error: train.epochs must be int, got 'three'"),
        (["model.name=mfnet4d"], "config error: model.name must be one of"),
        (["data.train=/nowhere/*.tfrecord"], "config error: data.train matches no files: /nowhere/*.tfrecord"),
        (["train.batch_size=0"], "config error: train.batch_size must be >= 1, got 0"),
        (["data.flip=maybe"], "config error: data.flip must be bool, got 'maybe'"),
        (["oops"], "config error: --set takes key=value, got 'oops'"),
        (["train.epochs=2 train.batch_size=-1"], "config error: train.batch_size must be >= 1, got -1"),
        (["model.num_classes=0"], "config error: model.num_classes must be >= 1, got 0"),
        (
            ["data.frame_intervals=[0]"],
            "config error: data.frame_intervals must be a non-empty list of integers >= 1, got [0]",
        ),
        (
            ["data.frame_intervals=[a]"],
            "config error: data.frame_intervals must be a non-empty list of integers >= 1, got ['a']",
        ),
        (["data.mean=[0.5,0.5]"], "config error: data.mean must be 3 numbers (R, G, B), got [0.5, 0.5]"),
        (["data.std=[0.2,0,0.2]"], "config error: data.std must be 3 numbers > 0 (R, G, B), got [0.2, 0, 0.2]"),
        (["data.shuffle_buffer=0"], "config error: data.shuffle_buffer must be >= 1, got 0"),
        (["model.dropout=1.5"], "config error: model.dropout must be in [0, 1), got 1.5"),
        (
            ["model.options.num_fiber=8"],
            "config error: unknown key model.options.num_fiber for mfnet3d (did you mean model.options.num_fibers?)",
        ),
        (["model.options.dropout=0.2"], "config error: model.options.dropout is set by model.dropout"),
        (["train.steps_per_epoch=-1"], "config error: train.steps_per_epoch must be >= 1, got -1"),
        (["train.label_smoothing=1"], "config error: train.label_smoothing must be in [0, 1), got 1.0"),
        (["model.num_classes=4"], "config error: model.num_classes must be >= the 8 classes of labels.txt, got 4"),
        (["data.videos=/tmp"], "config error: data.videos replaces data.train and data.eval: set one or the other"),
        (["data.validation_split=0.2"], "config error: data.validation_split goes with data.videos"),
        (
            ["data.train= data.eval="],
            "config error: data.train (a glob of training TFRecords) or data.videos is required",
        ),
        (
            ["data.reverse_pairs=[[move_left,nope]]"],
            "config error: data.reverse_pairs takes pairs of class names from labels.txt, got ['move_left', 'nope']",
        ),
    ],
)
def test_config_errors_are_one_line_naming_the_key(tmp_path, records, capsys, overrides, message):
    path = tiny_config(tmp_path, records)
    argv = ["--config", str(path), "--output", str(tmp_path / "run")]
    for item in overrides:
        argv += ["--set", *item.split()]  # several KEY=VALUE after one --set, or one each
    assert mfnet_cli.train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err, err
    assert not (tmp_path / "run").exists()


def test_crop_larger_than_the_frames_is_a_warning(tmp_path, records, capsys):
    config = load_config(str(tiny_config(tmp_path, records)), ["model.crop_size=64"])
    training_data.check_against_records(config, [str(i) for i in range(8)])
    err = capsys.readouterr().err
    assert err.startswith("warning: model.crop_size 64 is larger than the stored frames (40x40 in ")
    assert err.strip().endswith("clips will be upscaled") and config["model"]["num_classes"] == 8


def test_shipped_configs_load_by_name():
    for name in list_configs():
        config = load_config(name, ["data.videos=DIR"] if name == "own_videos" else [], check_paths=False)
        assert config["model"]["name"]
    assert load_config("ucf101.yaml", check_paths=False) == load_config("ucf101", check_paths=False)
    listed = "hmdb51, kinetics400, own_videos, synthetic_demo, synthetic_demo_2d, ucf101"
    with pytest.raises(ConfigError) as error:
        load_config("ucf_101")
    assert str(error.value) == f"config error: config file ucf_101 does not exist (packaged configs: {listed})"


def test_video_metrics_match_hand_computed_values():
    # two classes + a third never predicted; 3 videos with 2 views each
    probs = np.array(
        [
            [0.6, 0.3, 0.1],  # video 0 (label 0): views average to [0.5, 0.4, 0.1] -> correct
            [0.4, 0.5, 0.1],
            [0.2, 0.7, 0.1],  # video 1 (label 1): correct, both views correct
            [0.1, 0.8, 0.1],
            [0.7, 0.2, 0.1],  # video 2 (label 2): average [0.5, 0.2, 0.3] -> wrong; top-2 has it
            [0.3, 0.2, 0.5],
        ]
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    videos = np.array([0, 0, 1, 1, 2, 2])
    report = evaluate.video_metrics(probs, labels, videos, ["a", "b", "c"])
    assert report["video_top1"] == pytest.approx(2 / 3)
    assert report["video_top5"] == 1.0  # top-min(5, classes) = all three classes
    assert report["clip_top1"] == pytest.approx(4 / 6)  # views 0, 2, 3, 5 right
    assert report["per_class"] == {
        "a": {"videos": 1, "accuracy": 1.0},
        "b": {"videos": 1, "accuracy": 1.0},
        "c": {"videos": 1, "accuracy": 0.0},
    }
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert evaluate.top_k_hits(np.array([[0.5, 0.2, 0.3]]), np.array([2]), 2).tolist() == [True]  # video 2


def test_train_then_evaluate_writes_everything(tmp_path, records):
    config = load_config(str(tiny_config(tmp_path, records, epochs=1)))
    out = tmp_path / "run"
    train.train(config, str(out), verbose=0)
    for name in (
        "model.keras",
        "config.yaml",
        "labels.txt",
        "log.csv",
        "checkpoints/last.keras",
        "checkpoints/best.keras",
    ):
        assert (out / name).exists(), name
    report = evaluate.evaluate(config, str(out / "model.keras"), str(out / "eval"))
    assert report["videos"] == 8 and report["views"] == 16
    assert (out / "eval" / "per_class_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "eval" / "confusion_matrix.png").exists()
    assert json.loads((out / "eval" / "report.json").read_text())["video_top1"] == report["video_top1"]


def test_training_and_evaluation_go_on_past_corrupt_shards(tmp_path, records, capfd):
    from test_data import corrupt_copies

    folder = tmp_path / "records"
    folder.mkdir()
    train_shard = next(records.glob("train-*.tfrecord"))
    (folder / train_shard.name).write_bytes(train_shard.read_bytes())
    (folder / "labels.txt").write_text((records / "labels.txt").read_text())
    damaged = corrupt_copies(train_shard, folder)
    path = tiny_config(tmp_path, records, epochs=1)
    overrides = [f"data.train={folder}/*.tfrecord", f"data.eval={folder}/*.tfrecord"]
    config = load_config(str(path), overrides)
    train.train(config, str(tmp_path / "run"), verbose=0)
    assert (tmp_path / "run" / "model.keras").exists()
    err = capfd.readouterr().err
    for file in damaged.values():
        assert f"warning: {file}: unreadable from byte " in err, file
    report = evaluate.evaluate(config, str(tmp_path / "run" / "model.keras"), str(tmp_path / "eval"))
    err = capfd.readouterr().err
    for file in damaged.values():
        assert f"warning: {file}: unreadable from byte " in err, file
    assert report["videos"] > 16  # the whole shard, and the readable part of each copy


def test_synchronized_batch_norm_uses_global_statistics():
    """Two replicas see constant images of 0 and of 2: each replica's batch variance is 0, the global
    batch's is 1. After one step (momentum 0.9) the moving variance is 0.9 * 1 + 0.1 * variance."""
    script = textwrap.dedent(
        """
        import json
        import numpy as np
        import mfnet_keras
        import tensorflow as tf
        import keras
        from mfnet_keras.layers import BNActConv
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        # a global batch of 4 splits in order: replica 0 gets the two 0-images, replica 1 the two 2-images
        x = tf.concat([tf.zeros([2, 4, 4, 3]), tf.fill([2, 4, 4, 3], 2.0)], axis=0)
        ds = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((x, tf.zeros([4, 2]))).repeat())
        out = {}
        for synchronized in (True, False):
            with strategy.scope():
                inputs = keras.Input((4, 4, 3))
                layer = BNActConv(2, 1, synchronized_bn=synchronized)
                outputs = keras.layers.GlobalAveragePooling2D()(layer(inputs))
                model = keras.Model(inputs, outputs)
                model.compile(optimizer="sgd", loss="mse")
            model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
            out[str(synchronized)] = np.asarray(layer.bn.moving_variance).tolist()
        print(json.dumps(out))
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    variances = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(variances["True"], [1.0] * 3, rtol=1e-5)  # global statistics
    np.testing.assert_allclose(variances["False"], [0.9] * 3, rtol=1e-5)  # per-replica statistics


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mixed_precision_is_the_models_policy_not_a_global_one(tmp_path, records):
    import keras

    config = load_config(str(tiny_config(tmp_path, records, epochs=1, steps_per_epoch=2)))
    train.train(config, str(tmp_path / "run"), mixed_precision=True, verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # as before the call
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"), compile=False)
    expected = "mixed_bfloat16" if cpu_has_bfloat16() else "mixed_float16"  # no GPU here
    assert model.backbone.get_layer("conv2_B01").dtype_policy.name == expected
    assert "top5" in (tmp_path / "run" / "log.csv").read_text().splitlines()[0]  # on half-precision logits too


def test_two_worker_processes_train_on_loopback(tmp_path, records):
    """`model.fit` under MultiWorkerMirroredStrategy (keras-team/keras#20585 worked around): two workers on
    127.0.0.1 train in lockstep with a global batch split between them; only the chief writes."""
    path = tiny_config(tmp_path, records, epochs=2, steps_per_epoch=3, save_every_steps=2)
    out = tmp_path / "run"
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(tf_config))
        command = [sys.executable, "-m", "mfnet_cli.train", "--config", str(path), "--output", str(out)]
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300)[0])
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
        assert "strategy: MultiWorkerMirroredStrategy, 2 replica(s)" in output
    model = keras.saving.load_model(str(out / "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == 6
    assert model.backbone.get_layer("conv2_B01").conv_m1.bn.synchronized
    log = (out / "log.csv").read_text().strip().splitlines()
    assert len(log) == 3 and "val_accuracy" in log[0]
    assert "saved" in outputs[0] and "saved" not in outputs[1]


def test_reverse_pairs_become_a_label_table():
    assert training_data.reverse_labels([["a", "b"]], ["a", "b", "c"], clip_length=4) == [1, 0, 2]
    assert training_data.reverse_labels([], ["a"], 4) is None
    with pytest.raises(ConfigError, match=r"pairs of class names from labels.txt, got \['a', 'd'\]"):
        training_data.reverse_labels([["a", "d"]], ["a", "b", "c"], clip_length=4)


def test_sgd_l2_and_lr_multipliers_match_pytorch_rule():
    variable_a = keras.Variable(np.array([1.0, -2.0], "float32"), name="a")
    variable_b = keras.Variable(np.array([3.0], "float32"), name="b")
    optimizer = SGD(0.1, momentum=0.9, l2=0.01, lr_multipliers={"a": 0.2})
    grads = [np.array([0.5, 0.5], "float32"), np.array([1.0], "float32")]
    expected = {"a": np.array([1.0, -2.0]), "b": np.array([3.0])}
    buffers = {"a": np.zeros(2), "b": np.zeros(1)}
    for _ in range(3):
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], [variable_a, variable_b]))
        for key, grad, mult in (("a", grads[0], 0.2), ("b", grads[1], 1.0)):
            d = grad + 0.01 * expected[key]  # PyTorch: grad += weight_decay * param
            buffers[key] = 0.9 * buffers[key] - 0.1 * mult * d  # Keras's momentum form with the scaled lr
            expected[key] = expected[key] + buffers[key]
    np.testing.assert_allclose(np.asarray(variable_a), expected["a"], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(variable_b), expected["b"], rtol=1e-5)


def test_epoch_schedule():
    step = EpochSchedule(1.0, steps_per_epoch=10, epochs=30, kind="step", decay_epochs=[10, 20], decay=0.1)
    assert [round(float(step(s)), 6) for s in (0, 99, 100, 199, 200)] == [1.0, 1.0, 0.1, 0.1, 0.01]
    warm = EpochSchedule(1.0, steps_per_epoch=10, epochs=30, warmup_epochs=1)
    assert float(warm(0)) == pytest.approx(0.1) and float(warm(9)) == pytest.approx(1.0)
    cosine = EpochSchedule(1.0, steps_per_epoch=10, epochs=10, kind="cosine")
    assert float(cosine(50)) == pytest.approx(0.5) and float(cosine(100)) == pytest.approx(0.0, abs=1e-7)


def test_config_error_type_is_value_error():
    with pytest.raises(ConfigError):
        load_config(None, ["model.crop_size=big"], check_paths=False)


def test_demo_runs_end_to_end_at_small_settings(tmp_path):
    from mfnet_keras import demo

    overrides = ["train.epochs=1", "model.crop_size=32", "eval.num_clips=1", "train.save_every_steps=100"]
    small = {"train_per_class": 1, "test_per_class": 1, "size": 48}
    report = demo.run(str(tmp_path / "demo"), overrides, small, short_side=40)
    saved = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert saved == report
    for key in ("video_top1", "video_top5", "clip_top1", "baseline_2d_video_top1", "seconds"):
        assert key in saved
    assert (tmp_path / "demo" / "export" / "mfnet3d" / "saved_model.pb").exists()


def test_evaluate_names_a_bad_record_in_one_line(tmp_path, records, capsys):
    import tensorflow as tf

    from tfrecords_tools import schema

    bad = tmp_path / "bad.tfrecord"
    with tf.io.TFRecordWriter(str(bad)) as writer:
        writer.write(schema.make_sequence_example([b"\xff\xd8 cut"] * 4, 1, "b", "cut.mp4", 10, 8, 8))
    weights = tmp_path / "model.keras"
    build("mfnet3d", num_classes=8, input_shape=(4, 32, 32, 3)).save(weights)
    path = tiny_config(tmp_path, records)
    argv = ["--config", str(path), "--weights", str(weights), "--set", f"data.eval={bad}", "model.num_classes=8"]
    assert mfnet_cli.evaluate.main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"error: bad eval data: corrupt JPEG in {bad} record 0" and "Traceback" not in err


def test_set_adds_to_the_model_options_of_the_file(tmp_path, records):
    config = load_config(str(tiny_config(tmp_path, records)), ["model.options.num_fibers=8"])
    assert config["model"]["options"] == {**TINY_MFNET, "num_fibers": 8}
