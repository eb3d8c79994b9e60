"""Top-level behaviour and usage errors (exit 2), none of which may create an output file."""
import re

import numpy as np
import pytest

import cli_helpers as h

FLAGS = {
    "build": ["--onnx", "--saveEngine", "--backend", "--shapes", "--minShapes", "--optShapes",
              "--maxShapes", "--timingCacheFile", "--verbose"],
    "run": ["--loadEngine", "--loadInputs", "--exportOutput", "--profile", "--batch",
            "--iterations", "--warmUp", "--verbose"],
    "inspect": ["--loadEngine", "--json", "--verbose"],
}


def test_version():
    proc = h.ok("--version")
    assert proc.stdout.strip() == "mlprt 0.1.0 (plan format 1)"


def test_top_level_help_lists_subcommands():
    proc = h.ok("--help")
    for name in ("build", "run", "inspect", "--version"):
        assert name in proc.stdout


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_subcommand_help_lists_every_flag_with_an_example(command):
    proc = h.ok(command, "--help")
    lines = proc.stdout.splitlines()
    for flag in FLAGS[command]:
        line = next((l for l in lines if re.search(rf"(^|[\s,]){flag}\b", l)), None)
        assert line is not None, f"{command} --help does not list {flag}:\n{proc.stdout}"
        assert f"e.g. {flag}" in line, f"no example for {flag}: {line}"


def test_no_subcommand_is_a_usage_error():
    h.fails(2)


def test_unknown_subcommand():
    h.fails(2, "convert", "--onnx=m.onnx")


@pytest.mark.parametrize("command", ["build", "run", "inspect"])
def test_unknown_flag_is_an_error(command, tmp_path):
    out = tmp_path / "out.plan"
    err = h.fails(2, command, "--onnx=m.onnx", f"--saveEngine={out}", "--loadEngine=x.plan",
                  "--loadInputs=input:x.npy", "--noSuchFlag=3")
    assert "--nosuchflag" in err
    assert not out.exists()


def test_flag_names_are_case_sensitive(models, tmp_path):
    out = tmp_path / "m.plan"
    h.fails(2, "build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveengine={out}")
    assert not out.exists()


def test_missing_onnx(tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--saveEngine={out}")
    assert "--onnx" in err
    assert not out.exists()


def test_missing_save_engine(models):
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'static.onnx'}")
    assert "--saveengine" in err


def test_missing_load_inputs(plans, tmp_path):
    out = tmp_path / "y.npy"
    err = h.fails(2, "run", f"--loadEngine={plans['static']}", f"--exportOutput={out}")
    assert "--loadinputs" in err
    assert not out.exists()


@pytest.mark.parametrize("value", ["input:8y6", "input:", "input:-1x6", "8x6", ":8x6",
                                   "input:8x6,,", "input:8xx6"])
def test_bad_dims_syntax(models, tmp_path, value):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  f"--shapes={value}")
    assert "--shapes" in err
    assert not out.exists()


def test_bad_dims_in_trio_names_the_flag(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--minShapes=input:1x6", "--optShapes=input:4z6", "--maxShapes=input:8x6")
    assert "--optshapes" in err and "4z6" in err
    assert not out.exists()


def test_trio_count_mismatch(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--minShapes=input:1x6", "--optShapes=input:4x6", "--maxShapes=input:8x6",
                  "--minShapes=input:9x6", "--maxShapes=input:16x6")
    assert "--minshapes" in err and "--optshapes" in err and "--maxshapes" in err
    assert "2" in err and "1" in err
    assert not out.exists()


def test_profile_missing_max_for_one_input(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'two_inputs.onnx'}", f"--saveEngine={out}",
                  "--minShapes=input:1x6,mask:1x5", "--optShapes=input:4x6,mask:4x5",
                  "--maxShapes=input:8x6")
    assert "'mask'" in err and "--maxshapes" in err and "profile 0" in err
    assert not out.exists()


def test_min_greater_than_max(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--minShapes=input:8x6", "--optShapes=input:4x6", "--maxShapes=input:2x6")
    assert "input" in err and "min" in err
    assert not out.exists()


def test_shapes_with_trio_is_refused(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'dynamic.onnx'}", f"--saveEngine={out}",
                  "--shapes=input:4x6", "--minShapes=input:1x6", "--optShapes=input:4x6",
                  "--maxShapes=input:8x6")
    assert "--shapes" in err
    assert not out.exists()


def test_unknown_backend(models, tmp_path):
    out = tmp_path / "m.plan"
    err = h.fails(2, "build", f"--onnx={models['dir'] / 'static.onnx'}", f"--saveEngine={out}",
                  "--backend=tpu")
    assert "tpu" in err
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--batch=0", "--batch=-3", "--batch=abc", "--iterations=0",
                                  "--profile=-1", "--warmUp=-5"])
def test_bad_numeric_values(plans, tmp_path, flag):
    x = tmp_path / "x.npy"
    np.save(x, h.inputs(3))
    out = tmp_path / "y.npy"
    err = h.fails(2, "run", f"--loadEngine={plans['static']}", f"--loadInputs=input:{x}",
                  f"--exportOutput={out}", flag)
    assert flag.split("=")[0].lower() in err
    assert not out.exists()


def test_export_output_without_path(plans, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, h.inputs(3))
    h.fails(2, "run", f"--loadEngine={plans['static']}", f"--loadInputs=input:{x}",
            "--exportOutput=output:")
