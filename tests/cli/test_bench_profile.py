"""mlprt bench --dumpProfile / --exportProfile: the per-layer run after the timed one, its table
and JSON (one entry per layer as inspect lists them, percentages summing to 100), and a bad
--exportProfile path refused before any run."""
import json

import pytest

import cli_helpers as h

FAST = ["--warmUp=0", "--duration=0"]


def inspect_layers(plan):
    return [layer["name"] for layer in json.loads(h.ok("inspect", f"--loadEngine={plan}", "--json").stdout)["layers"]]


def test_dump_profile_prints_one_row_per_layer(plans):
    layers = inspect_layers(plans["dynamic"])
    proc = h.ok("bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:8x6",
                "--iterations=3", "--dumpProfile", *FAST)
    out = proc.stdout
    # The profile follows the timed run's summary.
    assert out.index("=== Performance summary ===") < out.index("=== Profile (")
    # At least 10 profiled calls, even with --iterations=3.
    calls = int(out.split("=== Profile (")[1].split(" iterations")[0])
    assert calls >= 10
    table = out.split("=== Profile (")[1].splitlines()[1:]
    assert table[0].split() == ["Layer", "Average(ms)", "Median(ms)", "Time(%)"]
    rows = [line.split() for line in table[1:1 + len(layers)]]
    assert [row[0] for row in rows] == layers
    for row in rows:
        assert float(row[1]) >= 0 and float(row[2]) >= 0 and 0 <= float(row[3]) <= 100
    total = table[1 + len(layers)].split()
    assert total[0] == "Total"
    assert float(total[1]) == pytest.approx(sum(float(r[1]) for r in rows), abs=1e-3)


def test_export_profile_writes_json(plans, tmp_path):
    layers = inspect_layers(plans["dynamic"])
    path = tmp_path / "profile.json"
    proc = h.ok("bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:8x6",
                "--iterations=12", f"--exportProfile={path}", *FAST)
    assert "=== Profile (" not in proc.stdout  # --exportProfile alone prints no table
    assert f"Profile written to {path}" in proc.stdout
    data = json.loads(path.read_text())
    header, entries = data[0], data[1:]
    assert header["count"] >= 12
    assert [e["name"] for e in entries] == layers
    for e in entries:
        assert set(e) == {"name", "timeMs", "averageMs", "medianMs", "percentage"}
        assert e["averageMs"] >= 0 and e["medianMs"] >= 0
        assert e["timeMs"] == pytest.approx(e["averageMs"] * header["count"], rel=1e-6)
    assert sum(e["percentage"] for e in entries) == pytest.approx(100.0, abs=1e-6)
    assert header["totalAverageMs"] == pytest.approx(sum(e["averageMs"] for e in entries))
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # written, then renamed


def test_profile_with_split_batch(plans, tmp_path):
    path = tmp_path / "split.json"
    # 19 rows past the max of 8: chunks of 8 and a tail; each layer once, summed over them.
    h.ok("bench", f"--loadEngine={plans['two_profiles']}", "--shapes=input:19x6", "--splitBatch",
         "--iterations=2", f"--exportProfile={path}", *FAST)
    entries = json.loads(path.read_text())[1:]
    assert [e["name"] for e in entries] == inspect_layers(plans["two_profiles"])


def test_profile_of_onnx_build_with_threads(models):
    proc = h.ok("bench", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                "--shapes=input:4x6", "--threads=1", "--iterations=2", "--dumpProfile", *FAST)
    assert "=== Profile (" in proc.stdout and "Total" in proc.stdout


@pytest.mark.parametrize("target, words", [
    ("no_such_dir/profile.json", ["--exportprofile", "no_such_dir", "does not exist"]),
    (".", ["--exportprofile", "is a folder"]),
])
def test_bad_export_profile_path_is_refused_before_the_runs(plans, tmp_path, target, words):
    err = h.fails(1, "bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:8x6",
                  f"--exportProfile={tmp_path / target}", *FAST)
    for word in words:
        assert word in err, err
