#!/usr/bin/env python3
"""safetensors_check.py - check a dldl weights or checkpoint file offline.

Reads FILE twice, with an independent strict numpy reader (the format: u64
little-endian header size N, N bytes of JSON padded with spaces, then the raw
little-endian data, data_offsets relative to the data start, tiling it with no
hole or overlap) and, when it is installed, with the `safetensors` package
(`pip install safetensors`), and checks that both agree on names, shapes,
dtypes, values and metadata.  With --expect E.json (written by
tests/unit/test_checkpoint.c under DLDL_ST_KEEP=DIR) it also checks every
tensor's shape and values and the metadata against what the C test held in
its arenas.

    DLDL_ST_KEEP=/tmp/st build/tests/test_checkpoint
    python3 tests/tools/safetensors_check.py /tmp/st/weights.safetensors \\
        --expect /tmp/st/weights.expect.json

Not part of `make test` (numpy only; the package is optional).  Prints one
line per tensor and "OK", or the first problem and exits 1.
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2",
          "U8": "u1", "BOOL": "?"}


class Bad(Exception):
    pass


def read_strict(path):
    """(tensors {name: ndarray}, dtypes {name: str}, metadata {str: str})."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise Bad("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise Bad(f"header size {n} past the end of the {len(raw)}-byte file")
    if n % 8:
        raise Bad(f"header size {n} is not a multiple of 8 (dldl pads it)")
    text = raw[8:8 + n].decode("utf-8")
    if not text.startswith("{"):
        raise Bad("header does not start with '{'")

    def no_dups(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise Bad("duplicate key in the header")
        return dict(pairs)

    header = json.loads(text, object_pairs_hook=no_dups)
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise Bad("__metadata__ values must be strings")
    tensors, dtypes, spans = {}, {}, []
    for name, e in header.items():
        if set(e) != {"dtype", "shape", "data_offsets"}:
            raise Bad(f"{name}: entry keys {sorted(e)}")
        dt = np.dtype(DTYPES[e["dtype"]])
        shape = tuple(e["shape"])
        b, end = e["data_offsets"]
        if not (0 <= b <= end <= len(data)):
            raise Bad(f"{name}: data_offsets {b},{end} outside {len(data)} data bytes")
        if end - b != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise Bad(f"{name}: {end - b} bytes for shape {shape} of {e['dtype']}")
        tensors[name] = np.frombuffer(data[b:end], dtype=dt).reshape(shape)
        dtypes[name] = e["dtype"]
        spans.append((b, end, name))
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise Bad(f"{name}: starts at byte {b}, expected {at} (hole or overlap)")
        at = end
    if at != len(data):
        raise Bad(f"{len(data)} data bytes, tensors cover {at}")
    return tensors, dtypes, meta


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def check(path, expect_path):
    tensors, dtypes, meta = read_strict(path)
    try:
        from safetensors import safe_open
    except ImportError:
        print("note: the safetensors package is not installed; numpy reader only")
    else:
        with safe_open(path, framework="numpy") as f:
            if set(f.keys()) != set(tensors):
                raise Bad(f"package sees tensors {sorted(f.keys())}")
            if (f.metadata() or {}) != meta:
                raise Bad(f"package sees metadata {f.metadata()}")
            for name in f.keys():
                if not same_bits(f.get_tensor(name), tensors[name]):
                    raise Bad(f"{name}: the package reads other values")
        print("safetensors package: same names, shapes, values, metadata")
    if expect_path:
        with open(expect_path) as f:
            exp = json.load(f)
        if set(exp["tensors"]) != set(tensors):
            raise Bad(f"tensors {sorted(tensors)}, expected {sorted(exp['tensors'])}")
        for name, e in exp["tensors"].items():
            t = tensors[name]
            if list(t.shape) != e["shape"] or dtypes[name] != "F32":
                raise Bad(f"{name}: {dtypes[name]} {list(t.shape)}, expected F32 {e['shape']}")
            want = np.array(e["values"], dtype=np.float32).reshape(t.shape)
            if not same_bits(t, want):
                raise Bad(f"{name}: values differ from the arena")
        if exp.get("metadata", {}) != meta:
            raise Bad(f"metadata {meta}, expected {exp.get('metadata')}")
    for name, t in tensors.items():
        print(f"{name:40s} {dtypes[name]} {list(t.shape)}")
    print("metadata", json.dumps(meta, sort_keys=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--expect", help="E.json from test_checkpoint (DLDL_ST_KEEP)")
    args = ap.parse_args()
    try:
        check(args.file, args.expect)
    except (Bad, KeyError, ValueError) as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
