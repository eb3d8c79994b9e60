"""Reads and writes the framing of an mlprt plan (docs/plan-format.md): header, metadata JSON,
weights, backend blob, CRC-64/XZ trailer. For tests that need a valid plan with edited contents
(the checksum recomputed, so the loader's checks behind it are reached)."""
import json
import struct

MAGIC = b"MLPRTPLN"
HEADER = 128
_POLY = 0xC96C5795D7870F42
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc64_xz(data):
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def _align64(x):
    return (x + 63) & ~63


def read(data):
    """(header bytes, metadata dict, weights bytes, blob bytes)."""
    assert data[:8] == MAGIC
    meta_off, meta_size, w_off, w_size, b_off, b_size = struct.unpack_from("<6Q", data, 24)
    meta = json.loads(data[meta_off:meta_off + meta_size].decode("utf-8"))
    return (bytes(data[:HEADER]), meta, bytes(data[w_off:w_off + w_size]),
            bytes(data[b_off:b_off + b_size]))


def write(header, meta, weights, blob):
    """A plan with these sections, canonical offsets and a correct checksum. `meta` is a dict
    (dumped compact with sorted keys, as mlprt writes it) or the JSON text itself."""
    text = meta if isinstance(meta, (bytes, str)) else json.dumps(
        meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.encode("utf-8") if isinstance(text, str) else text
    w_off = _align64(HEADER + len(text))
    b_off = _align64(w_off + len(weights))
    size = b_off + len(blob) + 8
    head = bytearray(header)
    struct.pack_into("<Q", head, 16, size)
    struct.pack_into("<6Q", head, 24, HEADER, len(text), w_off, len(weights), b_off, len(blob))
    out = bytearray(size)
    out[:HEADER] = head
    out[HEADER:HEADER + len(text)] = text
    out[w_off:w_off + len(weights)] = weights
    out[b_off:b_off + len(blob)] = blob
    struct.pack_into("<Q", out, size - 8, crc64_xz(bytes(out[:size - 8])))
    return bytes(out)
