#!/usr/bin/env python3
"""test_precision_cuda.py: checks that the oracle's "strict" precision really keeps float32
matmuls and convolutions out of TF32 on a CUDA GPU, and that "default" gives torch's own
settings back. Compares against float64 on the same GPU. Skips (exit 0) without CUDA.

usage: test_precision_cuda.py"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from kforge_oracle_inputs import Precision  # noqa: E402


def rel_err(a, ref):
    return float((a.double() - ref).abs().max() / ref.abs().max())


def main():
    if not torch.cuda.is_available():
        print("SKIP: no CUDA")
        return 0
    p = Precision()
    torch.manual_seed(0)
    a = torch.randn(1024, 1024, device="cuda")
    b = torch.randn(1024, 1024, device="cuda")
    x = torch.randn(8, 64, 32, 32, device="cuda")
    w = torch.randn(64, 64, 3, 3, device="cuda")
    mm_ref = a.double() @ b.double()
    conv_ref = torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    fails = 0
    p.set("strict")
    e_mm = rel_err(a @ b, mm_ref)
    e_conv = rel_err(torch.nn.functional.conv2d(x, w, padding=1), conv_ref)
    print("strict: matmul rel err %.2e, conv rel err %.2e" % (e_mm, e_conv))
    if e_mm > 1e-5 or e_conv > 1e-5:
        print("FAIL: strict precision is not IEEE float32")
        fails += 1
    p.set("default")
    e_conv_d = rel_err(torch.nn.functional.conv2d(x, w, padding=1), conv_ref)
    print("default: conv rel err %.2e (cudnn TF32 default %s)" % (
        e_conv_d, p.defaults.get((id(torch.backends.cudnn), "allow_tf32"))))
    p.set("strict")
    e_conv2 = rel_err(torch.nn.functional.conv2d(x, w, padding=1), conv_ref)
    if e_conv2 > 1e-5:
        print("FAIL: strict after default is not IEEE float32 (%.2e)" % e_conv2)
        fails += 1
    print("%d failures" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
