"""mlprt bench: trtexec-style timing of a plan or an ONNX model, its summary and --exportTimes;
precision flags of the build as bench and build share them."""
import json

import numpy as np
import pytest

import cli_helpers as h

FAST = ["--warmUp=0", "--duration=0"]


def test_bench_plan_prints_summary_and_exports_times(plans, tmp_path):
    times = tmp_path / "times.json"
    proc = h.ok("bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:8x6",
                "--iterations=25", f"--exportTimes={times}", "--percentile=50,99", *FAST)
    assert "=== Performance summary ===" in proc.stdout
    assert "qps" in proc.stdout
    for word in ("min =", "max =", "mean =", "median =", "percentile(50%)", "percentile(99%)"):
        assert word in proc.stdout, word
    data = json.loads(times.read_text())
    assert len(data["times"]) >= 25
    summary = data["summary"]
    assert summary["iterations"] == len(data["times"])
    assert summary["shapes"] == "input:8x6"
    lat = [t["latency_us"] for t in data["times"]]
    assert summary["latency_us"]["min"] == pytest.approx(min(lat))
    assert summary["latency_us"]["max"] == pytest.approx(max(lat))
    assert summary["latency_us"]["median"] == pytest.approx(float(np.median(lat)))
    assert summary["latency_us"]["min"] <= summary["latency_us"]["percentiles"]["50"] \
        <= summary["latency_us"]["percentiles"]["99"] <= summary["latency_us"]["max"]
    starts = [t["start_ms"] for t in data["times"]]
    assert starts == sorted(starts)


def test_bench_onnx_builds_with_threads_and_duration(models, tmp_path):
    times = tmp_path / "t.json"
    proc = h.ok("bench", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                "--shapes=input:4x6", "--threads=1", "--iterations=5", "--warmUp=10", "--duration=0.2",
                f"--exportTimes={times}", f"--saveEngine={tmp_path / 'b.plan'}")
    assert "Built" in proc.stdout and "tactics:" in proc.stdout
    summary = json.loads(times.read_text())["summary"]
    assert summary["threads"] == 1
    assert summary["walltime_s"] >= 0.2
    assert (tmp_path / "b.plan").is_file()


def test_bench_default_shapes_use_profile_opt(plans):
    proc = h.ok("bench", f"--loadEngine={plans['dynamic']}", "--iterations=3", *FAST)
    assert "input:8x6" in proc.stdout


@pytest.mark.parametrize("args, words", [
    ([], ["exactly one of --loadengine"]),
    (["--percentile=0"], ["--percentile"]),
    (["--percentile=abc"], ["--percentile"]),
    (["--iterations=0"], ["--iterations"]),
    (["--duration=-1"], ["--duration"]),
    (["--threads=-2"], ["--threads"]),
    (["--shapes=input:4xZ"], ["--shapes"]),
    (["--noSuchFlag"], ["--nosuchflag"]),
    (["--precisionConstraints=always"], ["--precisionconstraints"]),
])
def test_bench_bad_flags_exit_2(plans, args, words):
    engine = [] if not args else [f"--loadEngine={plans['dynamic']}"]
    err = h.fails(2, "bench", *engine, *args, *FAST)
    for word in words:
        assert word in err


def test_bench_both_engine_and_onnx_is_usage_error(plans, models):
    err = h.fails(2, "bench", f"--loadEngine={plans['dynamic']}",
                  f"--onnx={models['dir'] / 'dynamic.onnx'}")
    assert "exactly one" in err


@pytest.mark.parametrize("flag", ["--useCudaGraph", "--noDataTransfers", "--infStreams=2"])
def test_bench_gpu_flags_refused_on_cpu_plan(plans, flag):
    err = h.fails(2, "bench", f"--loadEngine={plans['dynamic']}", flag, *FAST)
    assert flag.split("=")[0].lower() in err
    assert "cuda plans" in err and "cpu plan" in err


def test_bench_shape_outside_profile_is_runtime_error(plans):
    err = h.fails(1, "bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:64x6", *FAST)
    assert "64x6" in err


def test_bench_unknown_input_name(plans):
    err = h.fails(1, "bench", f"--loadEngine={plans['dynamic']}", "--shapes=x:4x6", *FAST)
    assert "'x'" in err and "'input'" in err


def test_build_precision_flags_show_in_inspect(models, tmp_path):
    out = tmp_path / "p.plan"
    h.ok("build", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
         "--shapes=input:4x6", "--bf16", "--fp16", "--tf32", "--precisionConstraints=obey",
         "--layerPrecisions=*:fp32")
    text = h.ok("inspect", f"--loadEngine={out}").stdout
    assert "fp32+tf32+bf16+fp16" in text  # what the build permitted
    dense = [line for line in text.splitlines() if " Dense " in line]
    assert dense and all(" fp32 (" in line for line in dense), text


def test_build_layer_precision_errors(models, tmp_path):
    out = tmp_path / "e.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--shapes=input:4x6", "--layerPrecisions=fc:int4")
    assert "int4" in err and "fp32, tf32, fp16, bf16" in err
    err = h.fails(1, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--shapes=input:4x6", "--precisionConstraints=obey",
                  "--layerPrecisions=nope:fp32")
    assert "nope" in err and "its layers" in err
    fp16_args = ["build", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                 f"--saveEngine={out}", "--shapes=input:4x6", "--precisionConstraints=obey",
                 "--layerPrecisions=*:fp16"]
    from test_bench_cpu_stats import has_avx512_fp16
    if has_avx512_fp16():
        # The cpu backend's AVX-512 FP16 kernel honours it (test_bench_cpu_stats.py runs it).
        h.ok(*fp16_args)
        assert "fp16 (any M: fp16" in h.ok("inspect", f"--loadEngine={out}").stdout
    else:
        err = h.fails(1, *fp16_args)
        assert "fp16" in err and "avx-512 fp16" in err
        assert not out.exists()


def test_timing_cache_warm_build_times_nothing(models, tmp_path):
    cache = tmp_path / "t.cache"
    args = ["build", f"--onnx={models['dir'] / 'dynamic.onnx'}", "--minShapes=input:1x6",
            "--optShapes=input:1x6", "--maxShapes=input:1x6", "--minShapes=input:2x6",
            "--optShapes=input:8x6", "--maxShapes=input:16x6", f"--timingCacheFile={cache}"]
    cold = h.ok(*args, f"--saveEngine={tmp_path / 'a.plan'}").stdout
    warm = h.ok(*args, f"--saveEngine={tmp_path / 'b.plan'}").stdout
    assert "tactics: 0 timed" not in cold
    assert "tactics: 0 timed" in warm
    assert json.loads(cache.read_text())["format"] == "mlprt.timing_cache"
    assert (tmp_path / "a.plan").read_bytes() == (tmp_path / "b.plan").read_bytes()


def cuda_plan(models, tmp_path):
    """A cuda plan of the dynamic fixture for input 4x6, or a skip saying why there is none."""
    plan = tmp_path / "c.plan"
    build = h.run("build", "--backend=cuda", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                  "--shapes=input:4x6", f"--saveEngine={plan}")
    if build.returncode != 0:
        pytest.skip(f"no cuda backend here: {build.stderr.strip().splitlines()[-1]}")
    return plan


def test_cuda_bench_with_transfers_reports_the_library_host_path(models, tmp_path):
    """trtexec's H2D / compute / D2H split, and beside it the host path the library gives users
    (pinned host buffers bound to the context, copies inside its CUDA graph)."""
    plan = cuda_plan(models, tmp_path)
    times = tmp_path / "t.json"
    proc = h.ok("bench", f"--loadEngine={plan}", "--shapes=input:4x6", "--useCudaGraph",
                "--iterations=20", f"--exportTimes={times}", *FAST)
    assert "H2D Latency" in proc.stdout and "Host path" in proc.stdout
    summary = json.loads(times.read_text())["summary"]
    for key in ("h2d_us", "compute_us", "d2h_us", "host_path_us", "host_path_wall_us"):
        assert summary[key]["median"] > 0, key
    # Without transfers there is no host path to time.
    h.ok("bench", f"--loadEngine={plan}", "--shapes=input:4x6", "--noDataTransfers",
         f"--exportTimes={times}", *FAST)
    assert "host_path_us" not in json.loads(times.read_text())["summary"]


def test_cuda_bench_reports_host_and_device_memory(models, tmp_path):
    """Issue 17: cuda plans report host peak RSS and the device memory mlprt holds, beside the
    weight bytes; the device figure covers at least the weights."""
    plan = cuda_plan(models, tmp_path)
    times = tmp_path / "t.json"
    proc = h.ok("bench", f"--loadEngine={plan}", "--shapes=input:4x6", "--iterations=5",
                f"--exportTimes={times}", *FAST)
    assert "device memory held by mlprt" in proc.stdout
    summary = json.loads(times.read_text())["summary"]
    assert summary["weight_bytes"] > 0
    assert summary["device_bytes"] >= summary["weight_bytes"]
    assert summary["device_peak_bytes"] >= summary["device_bytes"]
    assert summary["peak_rss_mib"] > 0
