#!/usr/bin/env python3
"""test_oracle_protocol.py: drives python/kforge_oracle.py over its JSON-lines protocol on one
device (cpu or cuda), the way the C side does, without importing torch itself. It is the
oracle's check on machines where the C tree is not built (a GPU host with torch 2.x): every
good test problem loads, captures, makes cases in every distribution and times; the bad ones
give the right error kinds; torch.compile is timed where the torch has it.

usage: test_oracle_protocol.py [--device cpu|cuda] [--compile]   (exit status 1 on failure)"""

import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROBLEMS = os.path.join(ROOT, "tests", "problems")
GOOD = ["relu", "linear_gelu", "batchnorm_train", "tuple_out", "inplace_relu", "constant_output"]
BAD = {"not_a_problem": "no_model", "raises_in_init": "raised", "raises_in_forward": "raised",
       "syntax_error": "load", "bad_inputs": "bad_problem"}


class Oracle:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, os.path.join(ROOT, "python", "kforge_oracle.py")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("oracle exited")
        return json.loads(line)

    def close(self):
        self.ask(cmd="quit")
        self.p.wait(timeout=30)


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def floats(buf, entry):
    a, b = entry["data_offsets"]
    return struct.unpack("<%df" % ((b - a) // 4), buf[a:b])


def main(argv):
    device = argv[argv.index("--device") + 1] if "--device" in argv else "cpu"
    do_compile = "--compile" in argv
    work = tempfile.mkdtemp(prefix="kforge-proto-")
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)
            print("  FAIL", what)

    o = Oracle()
    hello = o.ask(cmd="hello")
    print("hello:", hello)
    check(hello.get("ok"), "hello ok")
    if device == "cuda":
        check("cuda" in hello.get("devices", []), "cuda listed")
    for name in GOOD:
        path = os.path.join(PROBLEMS, name + ".py")
        r = o.ask(cmd="load", path=path, seed=3, device=device, threads=0, workdir=work)
        check(r.get("ok"), "%s load: %s" % (name, r))
        if not r.get("ok"):
            continue
        check(r["device"] == device, "%s device" % name)
        g = o.ask(cmd="graph")
        check(g.get("ok"), "%s graph: %s" % (name, g.get("message")))
        if g.get("ok"):
            ops = sorted(set(n["op"] for n in g["graph"]["nodes"]))
            print("  %s: %s" % (name, " ".join(ops)))
            check(all(not op.split(".")[1].endswith("_") for op in ops), "%s functional" % name)
            header, _ = read_st(g["params_file"])
            check(set(k for k in header if k != "__metadata__") == set(g["graph"]["params"]),
                  "%s params file holds the params" % name)
            check(len(g["graph"]["outputs"]) == len(r["outputs"]), "%s outputs" % name)
        for dist in ("default", "normal", "uniform", "heavy"):
            f = os.path.join(work, "%s-%s.st" % (name, dist))
            c = o.ask(cmd="case", seed=9, dist=dist, file=f)
            check(c.get("ok"), "%s case %s: %s" % (name, dist, c))
            if c.get("ok"):
                header, buf = read_st(f)
                check("in.0" in header and "out.0" in header, "%s case keys" % name)
                if name == "relu":
                    xs, ys = floats(buf, header["in.0"]), floats(buf, header["out.0"])
                    check(all(y == max(x, 0.0) for x, y in zip(xs, ys)), "relu reference")
                    if dist == "default":
                        check(min(xs) >= 0, "rand inputs are non-negative")
                    else:
                        check(min(xs) < 0, "%s inputs have negatives" % dist)
        t = o.ask(cmd="time", mode="eager", seed=1, runs=5, warmup=2, flush_bytes=1 << 22)
        check(t.get("ok") and len(t["times_ms"]) == 5 and min(t["times_ms"]) > 0,
              "%s time eager: %s" % (name, t))
        t = o.ask(cmd="time", mode="eager", seed=1, runs=3, warmup=1, flush_bytes=0,
                  precision="default")
        check(t.get("ok"), "%s time eager default precision: %s" % (name, t))
        if do_compile and name in ("relu", "linear_gelu"):
            t = o.ask(cmd="time", mode="compile", seed=1, runs=5, warmup=2, flush_bytes=1 << 22)
            if hello.get("compile"):
                check(t.get("ok") and min(t.get("times_ms", [0])) > 0,
                      "%s time compile: %s" % (name, t))
                print("  %s compile: %s" % (name, t.get("times_ms")))
            else:
                check(t.get("error") == "unavailable", "compile unavailable: %s" % t)
    for name, kind in BAD.items():
        r = o.ask(cmd="load", path=os.path.join(PROBLEMS, name + ".py"), seed=1, device=device,
                  workdir=work)
        check(not r.get("ok") and r.get("error") == kind, "%s gives %s: %s" % (name, kind, r))
    r = o.ask(cmd="load", path=os.path.join(PROBLEMS, "relu.py"), seed=1, device=device,
              workdir=work)
    check(r.get("ok"), "load after bad problems")
    o.close()
    print("%d failures" % len(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
