"""The tf.data pipeline: sampling, augmentation, eval views, DMVR records, sharding, bad data, training."""

import colorsys
import io
import logging
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_case import build

from mfnet_keras.data import BadDataLogger, DataPosition, make_dataset, sample_eval_indices, sample_train_indices
from mfnet_keras.data.augment import hls_jitter
from tfrecords_tools import schema

H, W = 24, 32


def frame(t, video, width=W, height=H):
    """Frame t of a video: brightness encodes t, a left→right ramp shows orientation, a tint encodes the video."""
    ramp = np.linspace(0, 60, width)[None, :, None]
    image = np.full((height, width, 3), 20.0 + 8 * t) + ramp
    image[..., 2] = 5 * video
    return np.clip(image, 0, 255).astype(np.uint8)


def jpeg(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_records(path, videos, first_video=0):
    """videos: list of (num_frames, label) or (jpeg list, label); videos are numbered from `first_video`."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for v, (frames, label) in enumerate(videos, start=first_video):
            jpegs = frames if isinstance(frames, list) else [jpeg(frame(t, v)) for t in range(frames)]
            writer.write(schema.make_sequence_example(jpegs, label, f"c{label}", f"video{v}.mp4", 10, H, W))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    for shard in range(4):
        videos = [(20 + 3 * i, (shard + i) % 3) for i in range(3)]
        write_records(root / f"train-{shard:05d}-of-00004.tfrecord", videos, first_video=3 * shard)
    return root


def test_train_indices_interval_range_and_loop():
    for k in range(20):
        rand = tf.constant(k, tf.int64)
        idx = sample_train_indices(tf.constant(100, tf.int64), 16, (2,), 0.0, rand).numpy()
        assert idx.min() >= 0 and idx.max() < 100 and np.all(np.diff(idx) == 2)
        short = sample_train_indices(tf.constant(10, tf.int64), 16, (2,), 0.0, rand).numpy()
        np.testing.assert_array_equal(short, (np.arange(16) * 2) % 10)  # loops over a short video
        mixed = sample_train_indices(tf.constant(200, tf.int64), 8, (1, 2, 3), 0.0, rand).numpy()
        assert len(set(np.diff(mixed))) == 1 and np.diff(mixed)[0] in (1, 2, 3)
    a = sample_train_indices(tf.constant(300, tf.int64), 16, (1, 2, 3), 0.2, tf.constant(7, tf.int64))
    b = sample_train_indices(tf.constant(300, tf.int64), 16, (1, 2, 3), 0.2, tf.constant(7, tf.int64))
    np.testing.assert_array_equal(a, b)
    starts = {
        int(sample_train_indices(tf.constant(300, tf.int64), 4, (1,), 0.0, tf.constant(k, tf.int64))[0])
        for k in range(50)
    }
    assert len(starts) > 20  # random start


def test_eval_indices_cover_the_video_uniformly():
    idx = sample_eval_indices(tf.constant(100, tf.int64), 8, 2, 5).numpy()
    np.testing.assert_array_equal(idx[:, 0], [0, 21, 42, 64, 85])  # first start 0, last start 100 - 15
    assert np.all(np.diff(idx, axis=1) == 2)
    np.testing.assert_array_equal(sample_eval_indices(tf.constant(40, tf.int64), 8, 2, 1).numpy()[0, 0], 12)


def test_hls_jitter_matches_colorsys_reference():
    rgb = np.random.default_rng(1).uniform(0, 255, (400, 3)).astype("float32")
    offsets = np.array([12.0, -30.0, 20.0], "float32")  # hue on the 0-180 scale, lightness, saturation on 0-255
    got = hls_jitter(tf.constant(rgb), tf.constant(offsets)).numpy()
    for pixel, out in zip(rgb, got):
        hue, light, sat = colorsys.rgb_to_hls(*(pixel / 255.0))
        hue = (hue + offsets[0] / 180.0) % 1.0
        light = min(max(light + offsets[1] / 255.0, 0.0), 1.0)
        sat = min(max(sat + offsets[2] / 255.0, 0.0), 1.0)
        np.testing.assert_allclose(out, np.array(colorsys.hls_to_rgb(hue, light, sat)) * 255.0, atol=0.1)


def test_train_clips_shape_dtype_range(records):
    ds = make_dataset(str(records / "*.tfrecord"), "train", batch_size=2, clip_length=4, crop_size=16, seed=0)
    x, y = next(iter(ds))
    assert x.shape == (2, 4, 16, 16, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert np.all(x.numpy() >= 0) and np.all(x.numpy() <= 255)  # the model's preprocessor normalises
    half = make_dataset(
        str(records / "*.tfrecord"), "train", batch_size=2, clip_length=4, crop_size=16, dtype="bfloat16"
    )
    assert next(iter(half))[0].dtype == tf.bfloat16


def test_flip_is_spatial_only(records):
    ds = make_dataset(
        str(records / "*.tfrecord"),
        "train",
        batch_size=1,
        clip_length=6,
        frame_intervals=(1,),
        crop_size=16,
        scale_range=(24, 24),
        aspect_range=(1.0, 1.0),
        color_jitter=None,
        seed=3,
    )
    directions = set()
    for x, _ in ds:
        clip = x.numpy()[0, ..., 0]
        brightness = clip.mean(axis=(1, 2))
        assert np.all(np.diff(brightness) > 0)  # time order kept (frames get brighter)
        ramp = clip.mean(axis=(0, 1))
        directions.add("right" if ramp[-1] > ramp[0] else "left")
    assert directions == {"left", "right"}


def test_seed_makes_train_reproducible_and_epochs_differ(records):
    def batches(seed):
        ds = make_dataset(
            str(records / "*.tfrecord"),
            "train",
            batch_size=3,
            clip_length=4,
            crop_size=16,
            seed=seed,
            deterministic=True,
        )
        return [x.numpy() for x, _ in ds], [x.numpy() for x, _ in ds]

    (a1, a2), (b1, _) = batches(5), batches(5)
    for u, v in zip(a1, b1):
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(u, v) for u, v in zip(a1, a2))


def test_reverse_labels_play_half_the_clips_backwards_and_relabel_them(records):
    plain = dict(frame_intervals=(1,), crop_size=16, scale_range=(24, 24), aspect_range=(1.0, 1.0), flip=False)
    for multi_label in (False, True):
        ds = make_dataset(
            str(records / "*.tfrecord"), "train", batch_size=1, clip_length=6, color_jitter=None, seed=4,
            num_classes=3, multi_label=multi_label, reverse_labels=[1, 0], **plain,
        )  # fmt: skip
        directions = set()
        for x, y in ds.repeat(3):
            clip = x.numpy()[0] / 255.0
            video = round(clip[..., 2].mean() * 255 / 5)  # the tint
            label = (video // 3 + video % 3) % 3  # as `records` wrote it
            backwards = bool(np.all(np.diff(clip[..., 0].mean(axis=(1, 2))) < 0))  # frames get darker
            directions.add(backwards)
            expected = [1, 0, 2][label] if backwards else label
            got = y.numpy()[0]
            assert (np.argmax(got) if multi_label else got) == expected, (video, backwards, got)
        assert directions == {False, True}


def test_a_stream_started_at_a_saved_position_continues_it(records):
    def stream(position):
        return make_dataset(
            str(records / "*.tfrecord"), "train", batch_size=2, clip_length=4, crop_size=16, seed=1, position=position
        )

    tf.random.set_seed(0)  # train sets it before it builds its datasets, each time
    first = DataPosition()
    batches = [(x.numpy(), y.numpy()) for x, y in stream(first).take(9)]  # 6 batches a pass: into the second
    for steps in (4, 7):
        start = first.after_steps(steps)
        assert start[2] == steps
        again = [(x.numpy(), y.numpy()) for x, y in stream(DataPosition(start)).take(9 - steps)]
        for (x, y), (x2, y2) in zip(batches[steps:], again, strict=True):
            np.testing.assert_array_equal(x, x2)
            np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(batches[0][0], batches[6][0])  # passes differ


def test_eval_views_and_video_index(records):
    ds = make_dataset(
        str(records / "*.tfrecord"), "eval", batch_size=5, clip_length=4, crop_size=16, num_clips=3, num_crops=3
    )
    xs, ys, vs = zip(*[(x.numpy(), y.numpy(), v.numpy()) for x, y, v in ds])
    x, y, v = np.concatenate(xs), np.concatenate(ys), np.concatenate(vs)
    assert x.shape == (12 * 9, 4, 16, 16, 3)
    np.testing.assert_array_equal(np.bincount(v), [9] * 12)
    for video in range(12):
        assert len(set(y[v == video])) == 1
    again = np.concatenate([x.numpy() for x, _, _ in ds])
    np.testing.assert_array_equal(x, again)  # deterministic
    plain = make_dataset(
        str(records / "*.tfrecord"), "eval", batch_size=4, clip_length=4, crop_size=16, return_video_index=False
    )
    assert len(next(iter(plain))) == 2


def write_multi_label_records(path, label_lists, image_key="images", frames=6):
    """Model Garden / DMVR style records: several `clip/label/index` values, extra context keys."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for v, labels in enumerate(label_lists):
            example = tf.train.SequenceExample()
            example.context.feature["clip/label/index"].int64_list.value.extend(labels)
            example.context.feature["clip/label/text"].bytes_list.value.append(b"x")
            example.context.feature["clip/start/timestamp"].int64_list.value.append(0)
            example.context.feature["clip/media_id"].bytes_list.value.append(b"abc")
            feature_list = example.feature_lists.feature_list[image_key]
            for t in range(frames):
                feature_list.feature.add().bytes_list.value.append(jpeg(frame(t, v)))
            writer.write(example.SerializeToString())


def test_dmvr_style_records_with_extra_keys_and_multi_labels(tmp_path):
    path = tmp_path / "dmvr.tfrecord"
    write_multi_label_records(path, ([2, 5], [1]))
    common = dict(split="eval", batch_size=2, clip_length=4, crop_size=16, image_key="images")
    _, multi, _ = next(iter(make_dataset(str(path), num_classes=6, multi_label=True, **common)))
    np.testing.assert_array_equal(multi.numpy(), [[0, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0]])
    _, first, _ = next(iter(make_dataset(str(path), **common)))
    np.testing.assert_array_equal(first.numpy(), [2, 1])


def test_a_record_with_several_labels_trains_on_its_first_and_is_counted(tmp_path, caplog):
    path = tmp_path / "multi.tfrecord"
    write_multi_label_records(path, ([1, 3], [0], [1]), image_key=schema.IMAGE)
    common = dict(batch_size=1, clip_length=4, crop_size=8, seed=0)
    single = make_dataset(str(path), "train", num_classes=2, **common)  # label 3 is out of range, but unused
    assert sorted(int(y[0]) for _, y in single) == [0, 1, 1]
    assert single.bad_data.result() == {
        "unreadable": 0,
        "no_frames": 0,
        "bad_jpeg": 0,
        "bad_label": 0,
        "multi_label_records": 1,
    }
    logs = {}
    with caplog.at_level(logging.WARNING, logger="mfnet_keras.data"):
        BadDataLogger(single.bad_data).on_epoch_end(0, logs)
    assert logs == {"bad_data_dropped": 0, "multi_label_records": 1}
    assert "epoch 1: 1 record(s) hold several labels and trained on their first" in caplog.text
    multi = make_dataset(str(path), "train", num_classes=4, multi_label=True, **common)
    targets = sorted(tuple(y[0].numpy().tolist()) for _, y in multi)
    assert targets == [(0, 1, 0, 0), (0, 1, 0, 1), (1, 0, 0, 0)]
    assert multi.bad_data.result()["multi_label_records"] == 0


def test_multi_label_training_and_evaluation_give_map(tmp_path):
    from mfnet_keras import evaluate, train
    from mfnet_keras.config import load_config

    label_lists = [[1, 3], [0], [2, 3], [1], [0, 2], [3]]
    write_multi_label_records(tmp_path / "train.tfrecord", label_lists, image_key=schema.IMAGE, frames=8)
    overrides = [
        f"data.train={tmp_path}/train.tfrecord",
        "data.multi_label=true",
        "data.flip=false",
        "model.num_classes=4",
        "model.clip_length=4",
        "model.crop_size=16",
        "train.epochs=1",
        "train.batch_size=2",
        "eval.num_clips=1",
        "eval.num_crops=1",
    ]
    config = load_config(None, overrides)
    history = train.train(config, str(tmp_path / "run"), verbose=0)
    assert "pr_auc" in history.history and np.all(np.isfinite(history.history["loss"]))
    report = evaluate.evaluate(config, str(tmp_path / "run" / "model.keras"), str(tmp_path / "eval"))
    assert report["videos"] == 6 and 0 < report["video_map"] <= 1 and 0 < report["clip_map"] <= 1
    assert [report["per_class"][str(c)]["videos"] for c in range(4)] == [2, 2, 2, 3]
    assert (tmp_path / "eval" / "per_class_average_precision.png").exists()


def test_average_precision_matches_hand_computed_values():
    from mfnet_keras import evaluate

    # positives ranked 1st and 3rd: precision 1/1 and 2/3
    assert evaluate.average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx(5 / 6)
    assert evaluate.average_precision(np.array([0.5, 0.4]), np.array([0, 0])) is None
    probs = np.array([[0.9, 0.2], [0.7, 0.6], [0.1, 0.8], [0.3, 0.4]])
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    report = evaluate.multi_label_metrics(probs, labels, np.array([0, 0, 1, 1]), ["a", "b"])
    # videos: [0.8, 0.4] (a) and [0.2, 0.6] (b): each class's positive ranks first
    assert report["video_map"] == 1.0
    # views: a's positives rank 1st and 2nd (AP 1); b's (0.8, 0.4) rank 1st and 3rd (AP 5/6)
    assert report["clip_map"] == pytest.approx((1.0 + 5 / 6) / 2)


@pytest.mark.parametrize("files", [4, 1])
def test_per_worker_shards_are_disjoint_and_complete(records, files):
    pattern = str(records / "*.tfrecord") if files == 4 else str(records / "train-00000-of-00004.tfrecord")
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2)
        ds = make_dataset(pattern, "eval", batch_size=1, clip_length=2, crop_size=8, input_context=context)
        # the mean tint of a clip identifies its video (see `frame`), the label its class
        seen.append(sorted((round(float(x[0, ..., 2].numpy().mean()), 3), int(y[0])) for x, y, _ in ds))
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) + len(seen[1]) == 3 * files


@pytest.fixture
def bad_records(tmp_path):
    path = tmp_path / "bad.tfrecord"
    good = [jpeg(frame(t, 0)) for t in range(8)]
    corrupt = good[:3] + [good[3][: len(good[3]) // 2]] + good[4:]
    write_records(path, [(8, 0), ([], 1), (corrupt, 1), (8, 7), (8, 2)])
    return path


def test_bad_data_is_dropped_and_counted_in_train(bad_records, caplog):
    ds = make_dataset(
        str(bad_records), "train", batch_size=1, clip_length=8, frame_intervals=(1,), crop_size=8, num_classes=3
    )
    labels = sorted(int(y[0]) for _, y in ds)
    assert labels == [0, 2]
    assert ds.bad_data.result() == {
        "unreadable": 0,
        "no_frames": 1,
        "bad_jpeg": 1,
        "bad_label": 1,
        "multi_label_records": 0,
    }
    logger = BadDataLogger(ds.bad_data)
    logs = {}
    with caplog.at_level(logging.WARNING, logger="mfnet_keras.data"):
        logger.on_epoch_end(0, logs)
    assert logs["bad_data_dropped"] == 3
    assert "epoch 1: dropped 3 bad clip(s): no_frames 1, bad_jpeg 1, bad_label 1" in caplog.text
    assert ds.bad_data.result() == {
        "unreadable": 0,
        "no_frames": 0,
        "bad_jpeg": 0,
        "bad_label": 0,
        "multi_label_records": 0,
    }


@pytest.mark.parametrize(
    "keep, message",
    [([1], "no frames in"), ([2], "corrupt JPEG in"), ([3], "label out of range in")],
)
def test_bad_data_fails_eval_naming_file_and_record(bad_records, tmp_path, keep, message):
    subset = tmp_path / "subset.tfrecord"
    with tf.io.TFRecordWriter(str(subset)) as writer:
        for i, record in enumerate(tf.data.TFRecordDataset(str(bad_records))):
            if i in [0, *keep]:
                writer.write(record.numpy())
    ds = make_dataset(
        str(subset), "eval", batch_size=1, clip_length=8, frame_intervals=(1,), crop_size=8, num_classes=3
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=rf"bad eval data: {message}\] \[\S*subset.tfrecord record 1\]"
    ):
        list(ds)
    skipping = make_dataset(
        str(subset),
        "eval",
        batch_size=1,
        clip_length=8,
        frame_intervals=(1,),
        crop_size=8,
        num_classes=3,
        skip_bad=True,
    )
    assert [int(v[0]) for _, _, v in skipping] == [0]


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No TFRecord files match"):
        make_dataset(str(tmp_path / "*.tfrecord"))


def test_model_trains_on_the_dataset(records):
    ds = make_dataset(
        str(records / "*.tfrecord"), "train", batch_size=2, clip_length=4, crop_size=32, num_classes=3, seed=0
    )
    model = build("mfnet3d", num_classes=3, input_shape=(4, 32, 32, 3))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, steps_per_epoch=3, shuffle=False, verbose=0, callbacks=[BadDataLogger(ds.bad_data)])
    assert np.isfinite(history.history["loss"][0]) and history.history["bad_data_dropped"] == [0]


def corrupt_copies(path, folder):
    """Three damaged copies of a TFRecord file: flipped bytes mid-file, cut at 60 %, garbage appended."""
    data = path.read_bytes()
    flipped = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 40):
        flipped[i] ^= 0xFF
    copies = {"flipped": bytes(flipped), "truncated": data[: len(data) * 6 // 10], "garbage": data + b"garbage!" * 8}
    for name, content in copies.items():
        (folder / f"{name}.tfrecord").write_bytes(content)
    return {name: folder / f"{name}.tfrecord" for name in copies}


def test_unreadable_records_are_dropped_counted_and_named(tmp_path, capfd):
    good = tmp_path / "good.tfrecord"
    write_records(good, [(8, i % 3) for i in range(12)])
    corrupt_copies(good, tmp_path)
    with tf.io.TFRecordWriter(str(tmp_path / "odd.tfrecord")) as writer:
        writer.write(b"not a proto")
        bad_header = b"\xff\xd8\xff\xda" + jpeg(frame(0, 0))[4:]  # SOS before SOF: passes the SOI/EOI check
        writer.write(schema.make_sequence_example([bad_header] * 8, 1, "c1", "bad.mp4", 10, H, W))
        writer.write(schema.make_sequence_example([jpeg(frame(t, 0)) for t in range(8)], 2, "c2", "ok.mp4", 10, H, W))
    (tmp_path / "empty_shard.tfrecord").write_bytes(b"\x00" * 40)  # wholly unreadable
    ds = make_dataset(
        str(tmp_path / "*.tfrecord"), "train", batch_size=1, clip_length=8, frame_intervals=(1,), crop_size=8, seed=0
    )
    labels = [int(y[0]) for _, y in ds]
    err = capfd.readouterr().err
    for name in ("flipped", "truncated", "garbage", "empty_shard"):
        assert re.search(rf"warning: \S*{name}\.tfrecord: unreadable from byte \d+ of \d+ \(record \d+\)", err), name
    assert f"{tmp_path}/garbage.tfrecord: unreadable from byte {good.stat().st_size} of" in err
    assert f"{tmp_path}/empty_shard.tfrecord: unreadable from byte 0 of 40 (record 0)" in err
    failed = ds.bad_data.failed_records()
    assert failed == [f"{tmp_path}/odd.tfrecord record 0", f"{tmp_path}/odd.tfrecord record 1"]
    assert ds.bad_data.result()["unreadable"] == 6  # four files stopped early, two records raised
    assert 12 + 1 < len(labels) < 12 * 4 + 1  # the good file, the ok record, and what each copy had before its damage


def test_eval_clip_starts_are_the_same_in_the_pipeline_and_in_inference():
    """`sample_eval_indices` (TensorFlow, the evaluation pipeline) and `defaults.eval_clip_starts`
    (NumPy, `predict` and `streaming`) pick the same clips."""
    from mfnet_keras.defaults import clip_span, eval_clip_starts

    for frames, length, interval, clips in [(100, 8, 2, 5), (31, 16, 2, 1), (10, 16, 2, 3), (250, 16, 2, 10)]:
        indices = sample_eval_indices(tf.constant(frames, tf.int64), length, interval, clips).numpy()
        assert indices[:, 0].tolist() == eval_clip_starts(frames, clip_span(length, interval), clips)
