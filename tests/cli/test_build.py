"""mlprt build: static and dynamic plans, profiles, and the build's runtime errors (exit 1)."""
import numpy as np
import pytest

import cli_helpers as h


def test_build_static_prints_time_and_summary(models, tmp_path):
    out = tmp_path / "static.plan"
    proc = h.ok("build", "--backend=cpu", f"--onnx={models['dir'] / 'static.onnx'}",
                f"--saveEngine={out}")
    assert out.is_file() and out.stat().st_size > 0
    assert " ms" in proc.stdout
    assert "cpu" in proc.stdout.lower()
    assert not list(tmp_path.glob("*.tmp*")), "temporary files left behind"


def test_build_flags_take_a_separate_value(models, tmp_path):
    out = tmp_path / "dyn.plan"
    h.ok("build", "--onnx", models["dir"] / "dynamic.onnx", "--saveEngine", out,
         "--backend", "cpu", "--minShapes", "input:1x6", "--optShapes", "input:2x6",
         "--maxShapes", "input:4x6")
    assert out.is_file()


def test_build_with_shapes_makes_one_fixed_profile(models, tmp_path):
    out = tmp_path / "fixed.plan"
    h.ok("build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
         "--shapes=input:7x6")
    proc = h.ok("inspect", f"--loadEngine={out}")
    assert "Profiles (1)" in proc.stdout
    assert "min 7x6  opt 7x6  max 7x6" in proc.stdout


def test_build_two_profiles(plans):
    proc = h.ok("inspect", f"--loadEngine={plans['two_profiles']}")
    assert "Profiles (2)" in proc.stdout
    assert "min 1x6  opt 2x6  max 4x6" in proc.stdout
    assert "min 5x6  opt 6x6  max 8x6" in proc.stdout


def test_build_two_inputs_comma_separated(models, tmp_path):
    out = tmp_path / "two.plan"
    h.ok("build", f"--onnx={models['dir'] / 'two_inputs.onnx'}", f"--saveEngine={out}",
         "--minShapes=input:1x6,mask:1x5", "--optShapes=input:4x6,mask:4x5",
         "--maxShapes=input:8x6,mask:8x5")
    proc = h.ok("inspect", f"--loadEngine={out}")
    assert "min 1x5  opt 4x5  max 8x5" in proc.stdout


def test_build_verbose_logs_to_stderr(models, tmp_path):
    out = tmp_path / "v.plan"
    proc = h.ok("build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveEngine={out}",
                "--verbose")
    assert out.is_file()
    for line in proc.stderr.splitlines():
        assert line.startswith("mlprt: "), line


def test_build_is_deterministic(models, tmp_path):
    # Tactics are chosen by timing: the same timing cache makes the plan reproducible.
    a, b = tmp_path / "a.plan", tmp_path / "b.plan"
    cache = tmp_path / "timing.cache"
    for out in (a, b):
        h.ok("build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveEngine={out}",
             f"--timingCacheFile={cache}")
    assert a.read_bytes() == b.read_bytes()


def test_nonexistent_model(tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(1, "build", f"--onnx={tmp_path / 'missing.onnx'}", f"--saveEngine={out}")
    assert "missing.onnx" in err
    assert not out.exists()


def test_garbage_model(tmp_path):
    model = tmp_path / "garbage.onnx"
    model.write_bytes(b"\x08\x07not a protobuf model at all\xff\xff\xff")
    out = tmp_path / "m.plan"
    err = h.fails(1, "build", f"--onnx={model}", f"--saveEngine={out}")
    assert "garbage.onnx" in err
    assert not out.exists()


def test_unsupported_op_names_the_op(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(1, "build", f"--onnx={models['dir'] / 'unsupported.onnx'}",
                  f"--saveEngine={out}")
    assert "cos" in err
    assert not out.exists()


def test_dynamic_model_without_profile(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(1, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}")
    assert "input" in err
    assert not out.exists()


def test_profile_for_unknown_input(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(1, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--minShapes=images:1x6", "--optShapes=images:2x6", "--maxShapes=images:4x6")
    assert "images" in err
    assert not out.exists()


def test_failed_build_leaves_an_existing_plan_untouched(models, tmp_path):
    out = tmp_path / "m.plan"
    out.write_bytes(b"previous contents")
    h.fails(1, "build", f"--onnx={models['dir'] / 'unsupported.onnx'}", f"--saveEngine={out}")
    assert out.read_bytes() == b"previous contents"


def test_save_into_missing_folder(models, tmp_path):
    out = tmp_path / "no" / "such" / "folder" / "m.plan"
    err = h.fails(1, "build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveEngine={out}")
    assert "m.plan" in err
    assert not out.exists()


def test_optimization_level_0_times_nothing_and_runs_correctly(models, tmp_path):
    out = tmp_path / "level0.plan"
    proc = h.ok("build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                "--minShapes=input:1x6", "--optShapes=input:8x6", "--maxShapes=input:32x6",
                "--builderOptimizationLevel=0")
    assert "tactics: 0 timed" in proc.stdout
    timed = h.ok("build", f"--onnx={models['dir'] / 'dynamic.onnx'}",
                 f"--saveEngine={tmp_path / 'level3.plan'}", "--minShapes=input:1x6",
                 "--optShapes=input:8x6", "--maxShapes=input:32x6")
    assert "tactics: 0 timed" not in timed.stdout
    x = h.inputs(9)
    np.save(tmp_path / "x.npy", x)
    run = h.ok("run", f"--loadEngine={out}", f"--loadInputs=input:{tmp_path / 'x.npy'}",
               f"--exportOutput={tmp_path / 'y.npy'}", "--check")
    assert "PASS" in run.stdout
    assert h.rel_l2(np.load(tmp_path / "y.npy"), h.reference(models["weights"], x)) <= 1e-5
    info = h.ok("inspect", f"--loadEngine={out}", "--json").stdout
    assert '"optimization_level": 0' in info or '"optimization_level":0' in info


@pytest.mark.parametrize("level", ["6", "-1"])
def test_optimization_level_out_of_range_is_a_usage_error(models, tmp_path, level):
    out = tmp_path / "bad.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveEngine={out}",
                  f"--builderOptimizationLevel={level}")
    assert "builderoptimizationlevel" in err
    assert not out.exists()
