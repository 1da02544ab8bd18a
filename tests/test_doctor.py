"""`mfnet-doctor`: the pipeline's clips/s per core, its stages, and the cores a step rate needs."""

import json

import pytest

import mfnet_cli.doctor
from mfnet_keras import doctor
from mfnet_keras.data import throughput


def test_doctor_measures_the_pipeline_and_its_stages(demo_records, capsys):
    pattern = str(demo_records / "train-*.tfrecord")
    argv = [pattern, "--clip-length", "4", "--crop-size", "32", "--batch-size", "4", "--seconds", "1.5"]
    assert mfnet_cli.doctor.main([*argv, "--step-rate", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frame_size"] == [40, 40] and report["cores"] == throughput.cores()
    costs = report["stage_core_ms_per_clip"]
    assert list(costs) == list(throughput.STAGES) and all(value > 0 for value in costs.values())
    assert report["bound"] == max(costs, key=costs.get)
    per_core = report["clips_per_second_per_core"]
    assert per_core == pytest.approx(report["clips_per_second"] / report["cores"])
    assert report["cores_needed"] == pytest.approx(10 * 4 / per_core)
    # The stages on one thread add up to about what the whole pipeline does per core (within a factor of 3 on a
    # loaded machine; the benchmark compares them closely).
    assert 1 / 3 < (1000 / sum(costs.values())) / per_core < 3
    assert report["advice"][0].startswith(doctor.ADVICE[report["bound"]].split(":")[0])

    assert mfnet_cli.doctor.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"records: {pattern} (frames 40x40)"
    assert lines[2].startswith("pipeline: ") and lines[2].endswith(" clips/s per core")
    assert sum(line.endswith("<- bound") for line in lines) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["/nowhere/*.tfrecord"], "error: No TFRecord files match. Received: file_pattern='/nowhere/*.tfrecord'"),
        (["x", "--step-rate", "0"], "mfnet-doctor: error: --step-rate must be > 0, got 0"),
    ],
)
def test_doctor_errors_are_one_line(argv, message, capsys):
    try:
        code = mfnet_cli.doctor.main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message
