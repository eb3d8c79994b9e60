"""Damaged plans are refused by run and inspect with their own message, exit 1, no output."""
import struct

import numpy as np
import pytest

import cli_helpers as h


def flipped(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def truncated(data):
    return data[: len(data) // 2]


def version_bumped(data):
    data = bytearray(data)
    (version,) = struct.unpack_from("<I", data, 8)
    struct.pack_into("<I", data, 8, version + 1)
    return bytes(data)


DAMAGE = [(flipped, "corrupt"), (truncated, "truncated"), (version_bumped, "format version")]


@pytest.mark.parametrize("damage,message", DAMAGE, ids=[d[0].__name__ for d in DAMAGE])
@pytest.mark.parametrize("which", ["static", "two_profiles"])
def test_run_refuses_damaged_plan(plans, tmp_path, damage, message, which):
    plan = tmp_path / "damaged.plan"
    plan.write_bytes(damage(plans[which].read_bytes()))
    x, out = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x, h.inputs(3))
    err = h.fails(1, "run", f"--loadEngine={plan}", f"--loadInputs=input:{x}",
                  f"--exportOutput={out}")
    assert message in err
    assert "damaged.plan" in err
    assert not out.exists()


@pytest.mark.parametrize("damage,message", DAMAGE, ids=[d[0].__name__ for d in DAMAGE])
def test_inspect_refuses_damaged_plan(plans, tmp_path, damage, message):
    plan = tmp_path / "damaged.plan"
    plan.write_bytes(damage(plans["static"].read_bytes()))
    for extra in ([], ["--json"]):
        proc = h.run("inspect", f"--loadEngine={plan}", *extra)
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr.lower()
        assert proc.stdout == ""


def test_bumped_version_is_the_plan_format_field(plans):
    # The test above relies on bytes 8..11 holding the format version (docs/plan-format.md).
    data = plans["static"].read_bytes()
    assert struct.unpack_from("<I", data, 8)[0] == 1


@pytest.mark.parametrize("blob", [b"", b"MLPRTPLN", b"definitely not a plan file" * 10])
def test_not_a_plan(tmp_path, blob):
    plan = tmp_path / "junk.plan"
    plan.write_bytes(blob)
    err = h.fails(1, "inspect", f"--loadEngine={plan}")
    assert "junk.plan" in err
