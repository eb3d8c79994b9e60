"""Portable plans: --hardwareMismatch=retune|refuse|fallback on run/inspect/bench, and
`mlprt retune`. Real hardware differences: oneDNN limited to an older ISA with ONEDNN_MAX_CPU_ISA
(a plan built under the limit loaded without it, and the other way round). A cuda plan where no
GPU is: a cpu plan relabelled as an H200 cuda plan (plan_reframe.py)."""
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cli_helpers as h
import plan_reframe

TOL = 1e-5


def mlprt(*args, isa=None):
    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    env.pop("DNNL_MAX_CPU_ISA", None)
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    proc = subprocess.run([h.mlprt_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode >= 0, f"mlprt crashed: {proc.stderr}"
    return proc


def hardware_of(plan):
    return plan_reframe.read_plan(open(plan, "rb").read())[0]["hardware"]


def build(models, path, *extra, isa=None):
    proc = mlprt("build", "--backend=cpu", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                 f"--saveEngine={path}", "--minShapes=input:1x6", "--optShapes=input:8x6",
                 "--maxShapes=input:32x6", *extra, isa=isa)
    assert proc.returncode == 0, proc.stderr
    return path


def run_checked(models, plan, tmp_path, *extra, isa=None, tol=TOL):
    x = h.inputs(7, seed=3)
    xp, yp = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(xp, x)
    proc = mlprt("run", f"--loadEngine={plan}", f"--loadInputs=input:{xp}",
                 f"--exportOutput={yp}", *extra, isa=isa)
    assert proc.returncode == 0, proc.stderr
    assert h.rel_l2(np.load(yp), h.reference(models["weights"], x)) <= tol
    return proc


@pytest.fixture(scope="module")
def isa_plans(models, tmp_path_factory):
    """A plan built with oneDNN limited to AVX2 and one built without the limit."""
    d = tmp_path_factory.mktemp("isa")
    out = {"avx2": build(models, d / "avx2.plan", isa="AVX2"),
           "native": build(models, d / "native.plan")}
    out["native_id"] = hardware_of(out["native"])
    if hardware_of(out["avx2"]) != "x86_64 avx2":
        pytest.skip(f"oneDNN does not run AVX2 here (built for {hardware_of(out['avx2'])})")
    if out["native_id"] == "x86_64 avx2":
        pytest.skip("this CPU has nothing beyond AVX2: no ISA difference to load across")
    return out


def test_hardware_id_names_the_isa_onednn_runs(isa_plans):
    assert hardware_of(isa_plans["avx2"]) == "x86_64 avx2"
    assert re.fullmatch(r"x86_64 avx512_core\w*", isa_plans["native_id"]), isa_plans["native_id"]


@pytest.mark.parametrize("direction", ["avx2 plan, no limit", "native plan, AVX2 limit"])
def test_default_retunes_across_isas(models, isa_plans, tmp_path, direction):
    plan, isa = ((isa_plans["avx2"], None) if direction.startswith("avx2")
                 else (isa_plans["native"], "AVX2"))
    here = "x86_64 avx2" if isa else isa_plans["native_id"]
    proc = run_checked(models, plan, tmp_path, isa=isa)
    warning = [line for line in proc.stderr.splitlines() if "re-tuned for cpu" in line]
    assert len(warning) == 1, proc.stderr
    assert f"'{hardware_of(plan)}'" in warning[0] and f"'{here}'" in warning[0]
    assert re.search(r"in \d+\.\d+ s", warning[0]), warning[0]
    assert warning[0].startswith("mlprt: warning: ")


@pytest.mark.parametrize("direction", ["avx2 plan, no limit", "native plan, AVX2 limit"])
def test_refuse_refuses_across_isas(isa_plans, direction):
    plan, isa = ((isa_plans["avx2"], None) if direction.startswith("avx2")
                 else (isa_plans["native"], "AVX2"))
    for cmd in (["run", f"--loadEngine={plan}", "--loadInputs=input:unused.npy"],
                ["inspect", f"--loadEngine={plan}"],
                ["bench", f"--loadEngine={plan}", "--shapes=input:2x6", "--duration=0"]):
        proc = mlprt(*cmd, "--hardwareMismatch=refuse", isa=isa)
        assert proc.returncode == 1, (cmd, proc.stderr)
        err = proc.stderr
        assert err.startswith("mlprt: error: ")
        assert f"'{hardware_of(plan)}'" in err and "'refuse'" in err and "mlprt build" in err


def test_inspect_shows_the_retune(isa_plans):
    proc = mlprt("inspect", f"--loadEngine={isa_plans['avx2']}")
    assert proc.returncode == 0, proc.stderr
    assert f"Hardware:    {isa_plans['native_id']}" in proc.stdout
    assert "Re-tuned:    at load, from cpu (x86_64 avx2)" in proc.stdout


def test_retune_command_writes_a_plan_for_this_machine(models, isa_plans, tmp_path):
    out = tmp_path / "b.plan"
    proc = mlprt("retune", f"--loadEngine={isa_plans['avx2']}", f"--saveEngine={out}")
    assert proc.returncode == 0, proc.stderr
    assert "re-tuned from cpu (x86_64 avx2)" in proc.stdout
    assert "Re-tune time:" in proc.stdout
    assert hardware_of(out) == isa_plans["native_id"]
    assert not list(tmp_path.glob("*.tmp-*"))
    # Now it loads under the strict policy, silently, with the same outputs.
    proc = run_checked(models, out, tmp_path, "--hardwareMismatch=refuse")
    assert "warning" not in proc.stderr


def test_retune_command_on_a_matching_plan_says_so(isa_plans, tmp_path):
    out = tmp_path / "same.plan"
    proc = mlprt("retune", f"--loadEngine={isa_plans['native']}", f"--saveEngine={out}")
    assert proc.returncode == 0, proc.stderr
    assert "already built for this machine" in proc.stdout
    assert hardware_of(out) == isa_plans["native_id"]


def test_retune_command_refusals(plans, tmp_path):
    out = tmp_path / "never.plan"
    err = h.fails(2, "retune", f"--loadEngine={plans['dynamic']}", f"--saveEngine={out}",
                  "--hardwareMismatch=refuse")
    assert "allowed: retune, fallback" in err
    err = h.fails(1, "retune", f"--loadEngine={tmp_path / 'missing.plan'}", f"--saveEngine={out}")
    assert "missing.plan" in err and "does not exist" in err
    h.fails(2, "retune", f"--loadEngine={plans['dynamic']}")  # --saveEngine is required
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["run", "inspect", "bench"])
def test_bad_policy_value_is_refused_listing_the_allowed(plans, cmd):
    err = h.fails(2, cmd, f"--loadEngine={plans['dynamic']}", "--hardwareMismatch=rebuild")
    assert "'rebuild'" in err and "retune, refuse, fallback" in err


@pytest.fixture(scope="module")
def cuda_plans(models, tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda")
    fp32 = build(models, d / "cpu32.plan").read_bytes()
    fp16 = build(models, d / "cpu16.plan", "--fp16").read_bytes()
    out = {}
    for name, data in {
        "fp32": plan_reframe.fake_cuda_plan(fp32, "fp32"),
        "fp16": plan_reframe.fake_cuda_plan(fp16, "fp16"),
        "obey": plan_reframe.fake_cuda_plan(fp16, "fp16", build_config=lambda c: c.update(
            precision_constraints="obey", layer_precisions={"*": "fp16"})),
    }.items():
        out[name] = d / f"h200_{name}.plan"
        out[name].write_bytes(data)
    # These tests are about a machine without a GPU: where a cuda build works, they do not apply
    # (a fake plan's blob would be re-tuned on the GPU, or refused there for other reasons).
    gpu = mlprt("build", "--backend=cuda", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                "--shapes=input:4x6", f"--saveEngine={d / 'gpu.plan'}")
    probe = mlprt("inspect", f"--loadEngine={out['fp32']}")
    if gpu.returncode == 0 or "cannot run here" not in probe.stderr:
        pytest.skip("the cuda backend runs here: a cuda plan is re-tuned on the GPU, not run on "
                    f"cpu ({probe.stderr.strip() or 'loaded'})")
    return out


def test_cuda_plan_without_gpu_under_retune_names_the_fallback_policy(cuda_plans):
    for cmd in ("run", "inspect"):
        proc = mlprt(cmd, f"--loadEngine={cuda_plans['fp32']}", "--loadInputs=input:x.npy"
                     if cmd == "run" else "--hardwareMismatch=retune")
        assert proc.returncode == 1, proc.stderr
        # No GPU, or (the ASan build) no cuda backend compiled in: either way it cannot run here.
        assert "cuda backend" in proc.stderr
        assert ("no cuda device" in proc.stderr.lower()
                or "backend 'cuda' is not compiled into this build" in proc.stderr)
        assert "--hardwareMismatch=fallback" in proc.stderr


def test_cuda_plan_without_gpu_under_refuse_is_refused(cuda_plans):
    proc = mlprt("inspect", f"--loadEngine={cuda_plans['fp32']}", "--hardwareMismatch=refuse")
    assert proc.returncode == 1
    assert "cannot run here" in proc.stderr and "'refuse'" in proc.stderr


def test_cuda_plan_falls_back_to_cpu_saying_so(models, cuda_plans, tmp_path):
    proc = run_checked(models, cuda_plans["fp32"], tmp_path, "--hardwareMismatch=fallback")
    assert "it runs on the cpu backend" in proc.stderr
    assert "NVIDIA H200" in proc.stderr
    proc = mlprt("inspect", f"--loadEngine={cuda_plans['fp32']}", "--hardwareMismatch=fallback")
    assert "Backend:     cpu" in proc.stdout
    assert "Re-tuned:    at load, from cuda (NVIDIA H200" in proc.stdout


# AVX512_CORE_BF16: a CPU without AVX-512 FP16, where the cpu backend has no fp16 kernel (on an
# AMX Xeon it has one: test_fp16_cuda_plan_keeps_fp16_on_an_avx512_fp16_cpu).
NO_FP16 = "AVX512_CORE_BF16"


def fp16_here():
    flags = open("/proc/cpuinfo").read().split() if os.path.exists("/proc/cpuinfo") else []
    return "avx512_fp16" in flags and "amx_tile" in flags


def test_fp16_cuda_plan_degrades_per_layer_on_cpu(models, cuda_plans, tmp_path):
    proc = run_checked(models, cuda_plans["fp16"], tmp_path, "--hardwareMismatch=fallback",
                       tol=2e-2, isa=NO_FP16)
    degraded = [line for line in proc.stderr.splitlines()
                if ("ran in fp16 in the plan" in line  # what the cuda blob says per layer
                    or "the plan permitted fp16" in line)  # a build without the cuda backend
                and "fp16 is not available on cpu" in line]
    assert len(degraded) == 2, proc.stderr  # the tiny MLP's two Dense layers
    assert any("'fc1'" in line for line in degraded) and any("'fc2'" in line for line in degraded)


def test_obeyed_precision_the_cpu_lacks_fails_naming_the_layer(cuda_plans, tmp_path):
    proc = mlprt("run", f"--loadEngine={cuda_plans['obey']}", "--loadInputs=input:x.npy",
                 "--hardwareMismatch=fallback", isa=NO_FP16)
    assert proc.returncode == 1, proc.stderr
    assert "cannot be re-tuned for cpu" in proc.stderr
    assert "'fc1'" in proc.stderr and "fp16" in proc.stderr and "obey" in proc.stderr


def test_fp16_cuda_plan_keeps_fp16_on_an_avx512_fp16_cpu(models, cuda_plans, tmp_path):
    if not fp16_here():
        pytest.skip("this CPU has no AVX-512 FP16 (with AMX): the cpu backend has no fp16 kernel")
    run_checked(models, cuda_plans["obey"], tmp_path, "--hardwareMismatch=fallback", tol=2e-2)
    out = tmp_path / "cpu_fp16.plan"
    proc = mlprt("retune", f"--loadEngine={cuda_plans['obey']}", f"--saveEngine={out}",
                 "--hardwareMismatch=fallback")
    assert proc.returncode == 0, proc.stderr
    info = mlprt("inspect", f"--loadEngine={out}").stdout
    dense = [line for line in info.splitlines() if " Dense " in line]
    assert dense and all("fp16 (any M: fp16" in line for line in dense), info


def test_retune_command_falls_back_only_when_asked(cuda_plans, tmp_path):
    out = tmp_path / "cpu_from_h200.plan"
    proc = mlprt("retune", f"--loadEngine={cuda_plans['fp32']}", f"--saveEngine={out}")
    assert proc.returncode == 1 and "--hardwareMismatch=fallback" in proc.stderr
    assert not out.exists()
    proc = mlprt("retune", f"--loadEngine={cuda_plans['fp32']}", f"--saveEngine={out}",
                 "--hardwareMismatch=fallback")
    assert proc.returncode == 0, proc.stderr
    meta = plan_reframe.read_plan(out.read_bytes())[0]
    assert meta["backend"] == "cpu"
    assert '"retuned_from":{"backend":"cuda"' in meta["build_config_json"]


@pytest.mark.parametrize("constraints", ["prefer", "obey"])
def test_bf16_plan_on_a_cpu_without_bf16(models, tmp_path, constraints):
    """A bf16 plan built with native bf16 loaded with oneDNN limited to AVX-512 without BF16:
    'prefer' degrades each layer to fp32 (said per layer); 'obey' fails naming the layer."""
    if not h.cpu_has_bf16():
        pytest.skip("this CPU has no bf16 to build a bf16 plan with")
    plan = build(models, tmp_path / f"bf16_{constraints}.plan", "--bf16",
                 f"--precisionConstraints={constraints}", "--layerPrecisions=*:bf16")
    if constraints == "prefer":
        proc = run_checked(models, plan, tmp_path, isa="AVX512_CORE", tol=2e-2)
        degraded = [line for line in proc.stderr.splitlines() if "ran in bf16 in the plan" in line]
        assert len(degraded) == 2, proc.stderr
        assert all("runs in fp32 here" in line for line in degraded)
    else:
        proc = mlprt("run", f"--loadEngine={plan}", "--loadInputs=input:x.npy", isa="AVX512_CORE")
        assert proc.returncode == 1, proc.stderr
        assert "'fc1'" in proc.stderr and "bf16" in proc.stderr and "obey" in proc.stderr


@pytest.mark.parametrize("command", ["run", "inspect", "bench", "retune"])
def test_help_lists_the_policy_flag_with_an_example(command):
    lines = h.ok(command, "--help").stdout.splitlines()
    line = next((l for l in lines if "--hardwareMismatch" in l), None)
    assert line is not None, f"{command} --help does not list --hardwareMismatch"
    assert "e.g. --hardwareMismatch=" in line, line


def test_top_level_help_lists_retune():
    assert re.search(r"^\s+retune\s", h.ok("--help").stdout, re.M)


# Plans built on the GPU machine (the commands are in tests/fixtures/retune/README.md) from
# tests/fixtures/torch2/relu_nobias_dynamic.onnx: a real cuda plan (fp32 and fp16) and a cpu bf16
# plan of its Xeon (AMX). Each is checked against that fixture's float64 reference.
def fixture_dir():
    return Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("name,policy,tol", [
    ("h200_fp32.plan", "fallback", 1e-5),
    ("h200_fp16.plan", "fallback", 2e-2),
    ("xeon_amx_bf16.plan", "retune", 2e-2),
])
def test_plans_built_on_the_gpu_machine(name, policy, tol, tmp_path):
    plan = fixture_dir() / "retune" / name
    if not plan.exists():
        pytest.skip(f"{plan.name} is built on the GPU machine (tests/fixtures/retune/README.md); "
                    "not committed yet")
    meta = plan_reframe.read_plan(plan.read_bytes())[0]
    if meta["backend"] == "cuda" and "cannot run here" not in mlprt(
            "inspect", f"--loadEngine={plan}").stderr:
        pytest.skip("the cuda backend runs here: the GPU tests cover cuda plans")
    x = fixture_dir() / "torch2" / "relu_nobias_dynamic_in0.npy"
    ref = np.load(fixture_dir() / "torch2" / "relu_nobias_dynamic_ref0.npy")
    yp = tmp_path / "y.npy"
    for isa in (None, "AVX512_CORE", "AVX2"):  # with and without bf16 (and AVX-512) here
        proc = mlprt("run", f"--loadEngine={plan}", f"--loadInputs=input:{x}",
                     f"--exportOutput={yp}", f"--hardwareMismatch={policy}", isa=isa)
        assert proc.returncode == 0, proc.stderr
        assert h.rel_l2(np.load(yp), ref) <= tol, (isa, proc.stderr)
        if meta["precision"] != "fp32" and isa:
            assert "runs in fp32 here" in proc.stderr, proc.stderr
