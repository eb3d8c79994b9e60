"""Rewrites a plan file's metadata and backend blob and frames it again with a valid checksum,
written from docs/plan-format.md (not from plan.cpp). Used to make plans for hardware this machine
does not have: a cpu plan relabelled as a cuda plan for an H200, or for another CPU ISA."""
import json
import struct

HEADER = 128
_CRC_TABLE = []


def _table():
    if not _CRC_TABLE:
        poly = 0xC96C5795D7870F42  # CRC-64/XZ (ECMA-182 reflected)
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ poly if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    return _CRC_TABLE


def crc64_xz(data):
    table = _table()
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def _align64(x):
    return (x + 63) // 64 * 64


def read_plan(data):
    """-> (metadata dict, weights bytes, blob bytes, producer version)."""
    assert data[:8] == b"MLPRTPLN", "not a plan"
    (meta_off, meta_size, w_off, w_size, b_off, b_size) = struct.unpack_from("<6Q", data, 24)
    producer = data[72:104].rstrip(b"\0").decode()
    meta = json.loads(data[meta_off:meta_off + meta_size].decode())
    return meta, bytes(data[w_off:w_off + w_size]), bytes(data[b_off:b_off + b_size]), producer


def write_plan(meta, weights, blob, producer):
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    w_off = _align64(HEADER + len(text))
    b_off = _align64(w_off + len(weights))
    size = b_off + len(blob) + 8
    out = bytearray(size - 8)
    out[0:8] = b"MLPRTPLN"
    struct.pack_into("<IIQ", out, 8, 1, 0, size)
    struct.pack_into("<6Q", out, 24, HEADER, len(text), w_off, len(weights), b_off, len(blob))
    out[72:72 + len(producer)] = producer.encode()
    out[HEADER:HEADER + len(text)] = text
    out[w_off:w_off + len(weights)] = weights
    out[b_off:b_off + len(blob)] = blob
    return bytes(out) + struct.pack("<Q", crc64_xz(out))


def relabel(data, backend=None, hardware=None, blob=None, build_config=None):
    """The plan `data` with its backend, hardware, blob or build settings (a function of the
    build-config dict) replaced."""
    meta, weights, old_blob, producer = read_plan(data)
    if backend is not None:
        meta["backend"] = backend
    if hardware is not None:
        meta["hardware"] = hardware
    if build_config is not None:
        cfg = json.loads(meta["build_config_json"])
        build_config(cfg)
        meta["build_config_json"] = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    return write_plan(meta, weights, old_blob if blob is None else blob, producer)


H200 = "NVIDIA H200 sm_90 cudart 12080 cublasLt 120804"


def fake_cuda_plan(cpu_plan, precision="fp32", build_config=None):
    """A cpu plan relabelled as a cuda plan built on an H200: the graph, weights and build
    settings of the cpu plan, a cuda blob that names its precision and holds no tactics (it
    cannot be loaded, only re-tuned or run elsewhere)."""
    blob = json.dumps({"format": "mlprt.cuda", "version": 0, "precision": precision}).encode()
    return relabel(cpu_plan, backend="cuda", hardware=H200, blob=blob, build_config=build_config)
