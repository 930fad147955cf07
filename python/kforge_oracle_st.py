"""kforge_oracle_st: dtype names and a hand-written safetensors writer for the kforge oracle.

No safetensors or numpy package is needed: tensor bytes are read with ctypes from a contiguous
CPU copy. The file layout is the standard one: u64 little-endian header length N, N bytes of
JSON (padded with spaces to a multiple of 8), then the data buffer with no holes."""

import ctypes
import json
import os
import struct

import torch

# torch dtype -> (kforge short name, safetensors name)
_DTYPES = [
    (torch.float32, "f32", "F32"),
    (torch.float64, "f64", "F64"),
    (torch.float16, "f16", "F16"),
    (torch.bfloat16, "bf16", "BF16"),
    (torch.int64, "i64", "I64"),
    (torch.int32, "i32", "I32"),
    (torch.int16, "i16", "I16"),
    (torch.int8, "i8", "I8"),
    (torch.uint8, "u8", "U8"),
    (torch.bool, "bool", "BOOL"),
]
_SHORT = {d: s for d, s, _ in _DTYPES}
_ST = {d: t for d, _, t in _DTYPES}


class UnsupportedDtype(Exception):
    """A tensor has a dtype kforge does not model (complex, quantized, ...)."""


def short_dtype(dt):
    """torch.float32 -> "f32"; raises UnsupportedDtype for anything kforge cannot hold."""
    if dt not in _SHORT:
        raise UnsupportedDtype("unsupported dtype %s" % dt)
    return _SHORT[dt]


def tensor_desc(t):
    """{"dtype","shape"} of a tensor, as the load reply lists inputs and outputs."""
    return {"dtype": short_dtype(t.dtype), "shape": list(t.shape)}


def tensor_desc_strided(t):
    """{"dtype","shape","strides"} of a tensor, as graph values are described."""
    return {"dtype": short_dtype(t.dtype), "shape": list(t.shape), "strides": list(t.stride())}


def _tensor_bytes(t):
    c = t.detach().to("cpu").contiguous()
    n = c.numel() * c.element_size()
    if n == 0:
        return b""
    return ctypes.string_at(c.data_ptr(), n)


def write_safetensors(path, named):
    """Write [(name, tensor)] to path atomically (temporary file then rename)."""
    header = {}
    blobs = []
    off = 0
    for name, t in named:
        short_dtype(t.dtype)
        data = _tensor_bytes(t)
        header[name] = {"dtype": _ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
