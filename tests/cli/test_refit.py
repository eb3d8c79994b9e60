"""mlprt refit: new weights into a built plan, tactics kept. The refitted plan must be
byte-identical to a fresh build of the new model with the same timing cache, its outputs must
match the new model's float64 reference, and every refusal lists every problem."""
import inspect
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import cli_helpers as h
import plan_file

torch = pytest.importorskip("torch", reason="the refit tests export models with torch")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def save_safetensors(path, tensors):
    """A .safetensors file written by hand (the safetensors package may be absent)."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.float32: "F32", np.float16: "F16", np.float64: "F64", np.int64: "I64"}[array.dtype.type]
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        blobs.append(array.tobytes())
        offset += array.nbytes
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def export(model, path, example, dynamic=True):
    """The TorchScript exporter (torch 1.13's, and torch 2.x's with dynamo=False): these tests are
    about its initializer names. torch 2.x's default (dynamo) export of bn_mlp keeps none of the
    .pth's BatchNorm names; dynamo's exports are the torch2 fixtures below."""
    model.eval()
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(model, example, str(path), input_names=["input"], output_names=["output"],
                      opset_version=13,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None,
                      **kwargs)


def build(onnx_path, plan, cache, *extra):
    h.ok("build", "--backend=cpu", f"--onnx={onnx_path}", f"--saveEngine={plan}",
         f"--timingCacheFile={cache}", *extra)


PROFILE = ("--minShapes=input:1x6", "--optShapes=input:4x6", "--maxShapes=input:8x6")


def reference(model, x):
    """The torch model in float64: the new model's reference."""
    m64 = model.double().eval()
    with torch.no_grad():
        out = m64(torch.from_numpy(x.astype(np.float64))).numpy()
    model.float()
    return out


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def gemm_mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))


def matmul_mlp(seed):
    # Without bias, torch 1.x exports MatMul with a transposed weight named onnx::MatMul_N.
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8, bias=False), torch.nn.ReLU(),
                               torch.nn.Linear(8, 4, bias=False))


def bn_mlp(seed):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                            torch.nn.Linear(8, 4))
    with torch.no_grad():  # non-trivial running statistics
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2)
        m[1].weight.uniform_(0.5, 1.5)
        m[1].bias.uniform_(-0.5, 0.5)
    return m


def refit_round_trip(tmp_path, make, source):
    """Builds A, refits it with B's weights from `source` (onnx | pth | safetensors), builds B
    fresh at A's path with the same cache; returns (refitted plan, fresh plan, model B)."""
    a, b = make(1), make(2)
    x = torch.zeros(4, 6)
    model_path = tmp_path / "model.onnx"  # both builds read this path: the plans record it
    cache = tmp_path / "cache.json"
    export(a, model_path, x)
    build(model_path, tmp_path / "a.plan", cache, *PROFILE)
    a_bytes = (tmp_path / "a.plan").read_bytes()
    export(b, tmp_path / "b.onnx", x)
    if source == "onnx":
        shutil.copy(tmp_path / "b.onnx", model_path)
        h.ok("refit", f"--loadEngine={tmp_path / 'a.plan'}", f"--onnx={model_path}",
             f"--saveEngine={tmp_path / 'refit.plan'}")
    else:
        state = b.state_dict()
        if source == "pth":
            torch.save(state, tmp_path / "b.pth")
        else:
            save_safetensors(tmp_path / "b.safetensors", {k: v.numpy() for k, v in state.items()})
        out = h.ok("refit", f"--loadEngine={tmp_path / 'a.plan'}",
                   f"--weights={tmp_path / ('b.' + source)}", f"--saveEngine={tmp_path / 'refit.plan'}")
        assert "tactics kept" in out.stdout
        shutil.copy(tmp_path / "b.onnx", model_path)
    assert (tmp_path / "a.plan").read_bytes() == a_bytes, "refit must not touch the old plan"
    build(model_path, tmp_path / "fresh.plan", cache, *PROFILE)
    return tmp_path / "refit.plan", tmp_path / "fresh.plan", b


@pytest.mark.parametrize("make", [gemm_mlp, matmul_mlp, bn_mlp], ids=["torch1_gemm", "torch1_matmul", "batchnorm"])
@pytest.mark.parametrize("source", ["onnx", "pth", "safetensors"])
def test_refit_is_byte_identical_to_a_fresh_build(tmp_path, make, source):
    refit, fresh, b = refit_round_trip(tmp_path, make, source)
    assert refit.read_bytes() == fresh.read_bytes()
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    assert rel_l2(h.run_plan(refit, x, tmp_path)[0], reference(b, x)) <= 1e-5


def test_refit_changes_the_outputs(tmp_path):
    refit, _, b = refit_round_trip(tmp_path, gemm_mlp, "pth")
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    before = h.run_plan(tmp_path / "a.plan", x, tmp_path)[0]
    after = h.run_plan(refit, x, tmp_path)[0]
    assert rel_l2(before, reference(b, x)) > 1e-2  # A really differs from B
    assert rel_l2(after, reference(b, x)) <= 1e-5


def test_matmul_export_takes_torch_names_transposed(tmp_path):
    a = matmul_mlp(1)
    export(a, tmp_path / "a.onnx", torch.zeros(4, 6))
    names = [i.name for i in onnx.load(tmp_path / "a.onnx").graph.initializer]
    assert all(n.startswith("onnx::MatMul_") for n in names), names  # what this test is about
    build(tmp_path / "a.onnx", tmp_path / "a.plan", tmp_path / "c.json", *PROFILE)
    state = matmul_mlp(2).state_dict()
    state["0.weight"] = state["0.weight"].t().contiguous()  # the ONNX layout: wrong for torch's name
    torch.save(state, tmp_path / "b.pth")
    err = h.fails(1, "refit", f"--loadEngine={tmp_path / 'a.plan'}", f"--weights={tmp_path / 'b.pth'}",
                  f"--saveEngine={tmp_path / 'b.plan'}")
    assert "shape of '0.weight'" in err and "[6x8]" in err and "[8x6]" in err


# torch 2 (dynamo) exports: the fixtures. seq_3d reads transposed weights from val_0 / val_9 and
# scalars from val_2 / val_5 / val_7; its biases keep their torch names.
def test_dynamo_export_refit_by_torch_names(tmp_path):
    src = FIXTURES / "torch2" / "seq_3d.onnx"
    model_path = tmp_path / "model.onnx"
    shutil.copy(src, model_path)
    cache = tmp_path / "cache.json"
    prof = ("--minShapes=input:1x5x8", "--optShapes=input:2x5x8", "--maxShapes=input:4x5x8")
    build(model_path, tmp_path / "a.plan", cache, *prof)
    rng = np.random.default_rng(3)
    state = {"body.0.weight": rng.standard_normal((16, 8)).astype(np.float32),
             "body.0.bias": rng.standard_normal(16).astype(np.float32),
             "body.2.weight": rng.standard_normal((4, 16)).astype(np.float32),
             "body.2.bias": rng.standard_normal(4).astype(np.float32)}
    save_safetensors(tmp_path / "b.safetensors", state)
    h.ok("refit", f"--loadEngine={tmp_path / 'a.plan'}", f"--weights={tmp_path / 'b.safetensors'}",
         f"--saveEngine={tmp_path / 'refit.plan'}")
    model = onnx.load(src)
    new = {"val_0": state["body.0.weight"].T, "val_9": state["body.2.weight"].T,
           "body.0.bias": state["body.0.bias"], "body.2.bias": state["body.2.bias"]}
    for init in model.graph.initializer:
        if init.name in new:
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(new[init.name]), init.name))
    onnx.save(model, model_path)
    build(model_path, tmp_path / "fresh.plan", cache, *prof)
    assert (tmp_path / "refit.plan").read_bytes() == (tmp_path / "fresh.plan").read_bytes()
    # The new model in float64: Linear -> GELU(erf) -> Linear.
    from math import erf
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    hdn = x.astype(np.float64) @ state["body.0.weight"].T.astype(np.float64) + state["body.0.bias"]
    hdn = hdn * 0.5 * (1 + np.vectorize(erf)(hdn / np.sqrt(2)))
    ref = hdn @ state["body.2.weight"].T.astype(np.float64) + state["body.2.bias"]
    assert rel_l2(h.run_plan(tmp_path / "refit.plan", x, tmp_path)[0], ref) <= 1e-5


# ------------------------------------------------------------------------------ refusals

@pytest.fixture()
def gemm_plan(tmp_path):
    export(gemm_mlp(1), tmp_path / "a.onnx", torch.zeros(4, 6))
    build(tmp_path / "a.onnx", tmp_path / "a.plan", tmp_path / "c.json", *PROFILE)
    return tmp_path / "a.plan"


def refuse(plan, flag, tmp_path):
    before = plan.read_bytes()
    out = tmp_path / "out.plan"
    err = h.fails(1, "refit", f"--loadEngine={plan}", flag, f"--saveEngine={out}")
    assert plan.read_bytes() == before and not out.exists()
    assert not list(tmp_path.glob("out.plan.tmp*"))
    return err


def test_refuses_missing_unknown_and_shape_listing_every_one(gemm_plan, tmp_path):
    state = gemm_mlp(2).state_dict()
    del state["0.bias"]                       # missing
    del state["2.bias"]                       # missing
    state["extra.weight"] = torch.zeros(3)    # unknown
    state["0.weight"] = torch.zeros(8, 7)     # shape
    state["2.weight"] = torch.zeros(4, 8, dtype=torch.float64)  # dtype
    torch.save(state, tmp_path / "bad.pth")
    err = refuse(gemm_plan, f"--weights={tmp_path / 'bad.pth'}", tmp_path)
    assert "5 problems" in err and "the plan is unchanged" in err
    assert "missing weight '0.bias'" in err and "missing weight '2.bias'" in err
    assert "unknown weight 'extra.weight'" in err
    assert "shape of '0.weight': [8x7], the engine's is [8x6]" in err
    assert "dtype of '2.weight': float64, the engine's is float32" in err


def test_refuses_an_onnx_model_of_another_structure(gemm_plan, tmp_path):
    other = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.ReLU(), torch.nn.Linear(9, 4))
    export(other, tmp_path / "other.onnx", torch.zeros(4, 6))
    err = refuse(gemm_plan, f"--onnx={tmp_path / 'other.onnx'}", tmp_path)
    assert "'0.weight' is float32 [9x6], the engine's is float32 [8x6]" in err
    assert "'2.weight' is float32 [4x9]" in err


@pytest.mark.parametrize("content,words", [
    (b"", "not a pytorch file"),
    (b"PK\x03\x04garbage", "not a readable zip"),
    (b"\x80\x02legacy", "legacy (non-zip)"),
    (b"hello", "not a pytorch file"),
])
def test_refuses_bad_pth_files(gemm_plan, tmp_path, content, words):
    (tmp_path / "bad.pth").write_bytes(content)
    err = refuse(gemm_plan, f"--weights={tmp_path / 'bad.pth'}", tmp_path)
    assert words in err, err


def test_refuses_truncated_files(gemm_plan, tmp_path):
    torch.save(gemm_mlp(2).state_dict(), tmp_path / "b.pth")
    data = (tmp_path / "b.pth").read_bytes()
    (tmp_path / "t.pth").write_bytes(data[: len(data) // 2])
    assert "zip" in refuse(gemm_plan, f"--weights={tmp_path / 't.pth'}", tmp_path)
    save_safetensors(tmp_path / "b.safetensors", {k: v.numpy() for k, v in gemm_mlp(2).state_dict().items()})
    data = (tmp_path / "b.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:-10])
    assert "data_offsets" in refuse(gemm_plan, f"--weights={tmp_path / 't.safetensors'}", tmp_path)


def test_refuses_compressed_pth(gemm_plan, tmp_path):
    import zipfile
    torch.save(gemm_mlp(2).state_dict(), tmp_path / "b.pth")
    with zipfile.ZipFile(tmp_path / "b.pth") as zin, \
            zipfile.ZipFile(tmp_path / "z.pth", "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item.filename))
    assert "compressed" in refuse(gemm_plan, f"--weights={tmp_path / 'z.pth'}", tmp_path)


def test_refuses_unknown_extension_and_usage(gemm_plan, tmp_path):
    (tmp_path / "w.npz").write_bytes(b"x")
    assert "unknown weight file type '.npz'" in refuse(gemm_plan, f"--weights={tmp_path / 'w.npz'}", tmp_path)
    err = h.fails(2, "refit", f"--loadEngine={gemm_plan}", f"--saveEngine={tmp_path / 'o.plan'}")
    assert "exactly one of --onnx" in err


def test_refuses_a_plan_without_refit_record(gemm_plan, tmp_path):
    # A plan as an mlprt before refit wrote it: the same plan without the "refit" key.
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plan"))
    data = bytearray(gemm_plan.read_bytes())
    meta_size = struct.unpack_from("<Q", data, 32)[0]
    meta = json.loads(data[128:128 + meta_size])
    assert "refit" in meta
    del meta["refit"]
    old = tmp_path / "old.plan"
    old.write_bytes(rewrite_metadata(bytes(data), json.dumps(meta, separators=(",", ":"), sort_keys=True)))
    h.ok("inspect", f"--loadEngine={old}")  # still loads
    torch.save(gemm_mlp(2).state_dict(), tmp_path / "b.pth")
    err = refuse(old, f"--weights={tmp_path / 'b.pth'}", tmp_path)
    assert "has no refit record" in err and "rebuild it with this mlprt" in err


def rewrite_metadata(plan, meta_text):
    """The plan with other metadata: sections moved to their canonical places, checksum redone."""
    header, _, weights, blob = plan_file.read(plan)
    return plan_file.write(header, meta_text, weights, blob)
