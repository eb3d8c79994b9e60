"""mlprt bench on cpu plans: cold start, peak memory and the CPU's matmul peak beside the
latency; inspect's line on this CPU (AMX in use or why not, kernels); fp16 on AVX-512 FP16."""
import json
import os

import numpy as np
import pytest

import cli_helpers as h

FAST = ["--warmUp=0", "--duration=0"]


def has_avx512_fp16():
    """Whether the cpu backend has its fp16 kernel here: AVX-512 FP16 on an AMX Xeon, oneDNN's
    ISA not capped (ONEDNN_MAX_CPU_ISA)."""
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        return False
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return "avx512_fp16" in flags and "amx_tile" in flags and not capped


def run_error(plan, models, tmp_path, rows, seed):
    """`mlprt run` of `plan` on `rows` random rows: its rel. L2 error against float64."""
    x = np.random.default_rng(seed).standard_normal((rows, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    h.ok("run", f"--loadEngine={plan}", f"--loadInputs=input:{tmp_path / 'x.npy'}",
         f"--exportOutput={tmp_path / 'y.npy'}")
    y = np.load(tmp_path / "y.npy")
    ref = h.reference(models["weights"], x.astype(np.float64))
    return np.linalg.norm(y - ref) / np.linalg.norm(ref)


def test_bench_reports_cold_start_memory_and_peak(plans, tmp_path):
    times = tmp_path / "times.json"
    proc = h.ok("bench", f"--loadEngine={plans['dynamic']}", "--shapes=input:8x6",
                "--iterations=20", "--threads=1", f"--exportTimes={times}", *FAST)
    for words in ("Cold start: load", "first call", "Memory: peak RSS", "CPU peak fp32"):
        assert words in proc.stdout, words
    s = json.loads(times.read_text())["summary"]
    assert s["load_ms"] > 0 and s["context_ms"] >= 0 and s["first_call_us"] > 0
    # The process holds at least its weights; a few MiB for the binary and oneDNN at least.
    assert s["peak_rss_mib"] > s["weight_bytes"] / 2**20
    assert s["peak_rss_mib"] > 5
    # 2*M*K*N over the two Dense layers (6x5 and 5x4) at 8 rows.
    assert s["gflop_per_call"] == pytest.approx(2 * 8 * (6 * 5 + 5 * 4) / 1e9)
    assert s["peak_precision"] == "fp32"
    assert s["cpu_peak_gflops"] > 1.0  # any x86-64 core does 1 GFLOP/s of fp32 matmul
    assert s["gflops"] == pytest.approx(s["gflop_per_call"] * 1e6 / s["latency_us"]["median"],
                                        rel=1e-6)


def test_inspect_says_what_this_cpu_gives_the_cpu_backend(plans):
    out = h.ok("inspect", f"--loadEngine={plans['static']}").stdout
    line = next((l for l in out.splitlines() if l.startswith("This CPU:")), None)
    assert line is not None, out
    assert "AMX:" in line and "cpu kernels: fp32" in line
    flags = open("/proc/cpuinfo").read().split()
    if "amx_tile" in flags and "amx_bf16" in flags:
        # Either in use or the reason it is not: never silent.
        assert "in use" in line or "did not grant" in line or "oneDNN runs" in line, line
    else:
        assert "not on this CPU" in line, line
    assert ("fp16" in line) == has_avx512_fp16(), line


def test_fp16_on_cpu(models, tmp_path):
    plan = tmp_path / "fp16.plan"
    args = ["build", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}",
            f"--saveEngine={plan}", "--shapes=input:16x6", "--fp16",
            "--layerPrecisions=*:fp16", "--precisionConstraints=obey"]
    if not has_avx512_fp16():
        err = h.fails(1, *args)
        assert "avx-512 fp16" in err, err
        pytest.skip("this CPU has no AVX-512 FP16: fp16 refused (checked), not run")
    h.ok(*args)
    info = h.ok("inspect", f"--loadEngine={plan}").stdout
    assert "Precision:   fp32+fp16" in info, info  # what the build permitted
    dense = [l for l in info.splitlines() if " Dense " in l]
    assert len(dense) == 2 and all("fp16 (any M: fp16" in l for l in dense), info
    assert "mlprt:avx512_fp16" in info, info
    err = run_error(plan, models, tmp_path, rows=16, seed=3)
    assert err <= 2e-2, err
    assert err > 1e-7, "fp16 plan gave the fp32 result: the fp16 kernel did not run"


def test_bf16_build_times_the_amx_chain_kernel(models, tmp_path):
    """A --bf16 build of a Dense chain times the AMX chain kernel at the opt rows where the CPU has
    AMX, says so, records its choice (inspect), and the plan runs within bf16's tolerance."""
    plan = tmp_path / "amx.plan"
    proc = h.ok("build", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                f"--saveEngine={plan}", "--shapes=input:4096x6", "--bf16", "--threads=2",
                "--verbose")
    log = proc.stderr
    info = h.ok("inspect", f"--loadEngine={plan}").stdout
    flags = open("/proc/cpuinfo").read().split()
    if "amx_tile" not in flags or "amx_bf16" not in flags:
        assert "no AMX chain kernel: the CPU has no AMX" in log, log
        assert "AMX chain kernel" not in info, info
        pytest.skip("this CPU has no AMX: the kernel is not timed (checked), not run")
    timed = [l for l in log.splitlines() if "AMX chain kernel" in l and "chose" in l]
    assert len(timed) == 1, log
    chosen = "chose the AMX chain kernel" in timed[0]
    assert ("batch 4096: bf16 AMX chain kernel" in info) == chosen, (timed, info)
    err = run_error(plan, models, tmp_path, rows=4096, seed=5)
    assert err <= 2e-2, err
