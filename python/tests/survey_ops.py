#!/usr/bin/env python3
"""survey_ops.py: load every problem file under the given paths through the oracle (over its
line protocol, as the C side does) and print, per problem, the ATen ops of its captured graph
or the error, then the distinct ops over all of them. For people: which ops must kforge handle.

usage: survey_ops.py [--device cpu|cuda] [--decompose default|none] PATH..."""

import json
import os
import subprocess
import sys
import tempfile


def main(argv):
    device, decompose, paths = "cpu", "default", []
    it = iter(argv)
    for a in it:
        if a == "--device":
            device = next(it)
        elif a == "--decompose":
            decompose = next(it)
        else:
            paths.append(a)
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith(".py")]
        else:
            files.append(p)
    files.sort()
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "kforge_oracle.py")
    work = tempfile.mkdtemp(prefix="kforge-survey-")
    child = subprocess.Popen([sys.executable, script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ask(req):
        child.stdin.write(json.dumps(req) + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    every = {}
    failed = 0
    for f in files:
        r = ask({"cmd": "load", "path": os.path.abspath(f), "seed": 1, "device": device,
                 "workdir": work})
        if r.get("ok"):
            r = ask({"cmd": "graph", "decompose": decompose})
        if not r.get("ok"):
            failed += 1
            print("%s: ERROR %s: %s" % (f, r.get("error"), r.get("message")))
            continue
        ops = sorted(set(n["op"] for n in r["graph"]["nodes"]))
        for o in ops:
            every.setdefault(o, []).append(os.path.basename(f))
        print("%s: %s" % (f, " ".join(ops)))
    ask({"cmd": "quit"})
    child.wait()
    print("\n%d problems, %d failed; %d distinct ops:" % (len(files), failed, len(every)))
    print(" ".join(sorted(every)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
