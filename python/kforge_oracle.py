#!/usr/bin/env python3
"""kforge_oracle.py: the PyTorch oracle, the only part of kforge that imports torch.

A long-lived child of the C side (src/oracle/kf_oracle.c). Protocol (src/oracle/kf_oracle.h):
one JSON request per line on stdin, one JSON reply per line on stdout, nothing else on stdout
(fd 1 is pointed at stderr, so prints of problems and libraries land on stderr). Requests:
hello, load, graph, case, time, quit. Every reply has "ok"; failures have "error" (a kind) and
"message" (one line). Error kinds: torch_missing, bad_request, not_loaded, load (import or
syntax error), no_model (Model/get_inputs/get_init_inputs missing), raised (the problem's code
raised), bad_problem (inputs or outputs kforge cannot handle), device (device absent),
capture (graph capture failed or disagrees with the module), unavailable (no torch.compile),
compile (torch.compile failed), f64_unavailable (no float64 reference for this model),
io (a file could not be written), ipc_unavailable (no CUDA IPC export here), internal.

case takes an optional "reference": "f32" (default) or "f64". With "f64" the inputs are the
very same draw as the f32 case of that seed and dist (bit for bit: same seeding, same redraw),
and "out.M" come from a float64 copy of the model (copy.deepcopy(model).double(), made once
per load and reused) run on those inputs upcast to float64 (integer inputs as they are), in
the same strict precision, each output then rounded to the dtype of the model's own output.
The harness asks for it only when a candidate failed against the float32 reference: a kernel
more accurate than PyTorch's float32 summation can differ from it by more than the tolerance
where sums cancel. A model that cannot run in float64 (an op without a double kernel, a
deepcopy that fails, outputs that change count or shape) gives f64_unavailable.

The device data path (cuda sessions, kforge_oracle_ipc.py): case with "ipc": true writes no
file; its tensors stay on the GPU and the reply lists, per tensor, name, dtype, shape, nbytes,
the CUDA IPC memory handle (hex) of the allocation holding it and its byte offset there, plus
the "id" of the group, kept alive until {"cmd":"release","ids":[..]}. params_ipc does the same
for the params of the last graph capture (by value name, as in the params file).

Works on torch 1.13 (Debian, CPU: functorch + make_fx) and torch 2.x (CPU or CUDA).
Graph capture details: kforge_oracle_capture.py. Input distributions and precision modes:
kforge_oracle_inputs.py. Safetensors writing: kforge_oracle_st.py."""

import copy
import importlib.util
import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kforge_oracle_json import dumps  # noqa: E402 (needs the path above)


class OracleError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _one_line(text, limit=2000):
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit] + "..."


def _exc_text(e):
    if isinstance(e, SyntaxError):
        loc = "%s:%s" % (os.path.basename(e.filename or "?"), e.lineno)
        return _one_line("SyntaxError: %s (%s)" % (e.msg, loc))
    return _one_line("%s: %s" % (type(e).__name__, e))


class Problem:
    """A loaded problem: its module, model instance, pristine inputs and reference outputs."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Oracle:
    def __init__(self):
        self.torch = None
        self.torch_error = None
        self.problem = None
        self.n_loads = 0
        self.ipc = None
        # cuda problems: the inputs of the last case (problem index, seed, dist) -> pristine
        # tensors, which time reuses (as clones) instead of drawing 1 GiB again on the CPU
        self.last_inputs = None
        try:
            import torch
            self.torch = torch
            from kforge_oracle_inputs import Precision
            self.precision = Precision()
            self.default_threads = torch.get_num_threads()
        except BaseException as e:
            self.torch = None
            self.torch_error = _exc_text(e)

    # ---- helpers ----
    def _need_torch(self):
        if self.torch is None:
            raise OracleError("torch_missing", "cannot import torch: %s" % self.torch_error)
        return self.torch

    def _need_problem(self):
        self._need_torch()
        if self.problem is None:
            raise OracleError("not_loaded", "no problem loaded")
        return self.problem

    def _blas(self):
        torch = self.torch
        cfg = torch.__config__.show().lower()
        info = ""
        for part in cfg.replace(",", " ").split():
            if part.startswith("blas_info="):
                info = part.split("=", 1)[1]
        if "mkl" in info:
            return "mkl"
        if "open" in info:
            return "openblas"
        # A generic BLAS is whatever libblas resolves to; look at what got mapped.
        try:
            a = torch.ones(64, 64)
            (a @ a).sum()
            with open("/proc/self/maps") as f:
                maps = f.read().lower()
            for key, name in (("openblas", "openblas"), ("mkl", "mkl"), ("blis", "blis"),
                              ("atlas", "atlas")):
                if key in maps:
                    return name
        except Exception:
            pass
        return info or "generic"

    def _devices(self):
        torch = self.torch
        devs = ["cpu"]
        try:
            if torch.cuda.is_available():
                devs.append("cuda")
        except Exception:
            pass
        return devs

    def _env(self):
        torch = self.torch
        return {"torch": torch.__version__, "python": platform.python_version(),
                "blas": self._blas(), "threads": torch.get_num_threads(),
                "devices": self._devices(), "compile": hasattr(torch, "compile")}

    def _make_inputs(self, p, seed, dist="default"):
        from kforge_oracle_inputs import seed_all, redraw
        torch = self.torch
        seed_all(seed)
        raw = None
        if p.device != "cpu" and getattr(p, "inputs_on_device", True):
            # Draw straight on the GPU (factory functions under the device context): a 1 GiB
            # torch.randn takes seconds on the CPU, milliseconds there. The same seed gives the
            # same draw on the same device, which is all the protocol needs. A get_inputs that
            # does not work that way (numpy, CPU-only ops) falls back to the CPU for good.
            ctx = getattr(torch, "device", None)
            try:
                with ctx(p.device):
                    raw = p.module.get_inputs()
            except BaseException:
                p.inputs_on_device = False
                raw = None
                seed_all(seed)
        if raw is None:
            try:
                raw = p.module.get_inputs()
            except BaseException as e:
                raise OracleError("raised", "get_inputs(): %s" % _exc_text(e))
        if not isinstance(raw, (list, tuple)):
            raw = [raw]
        args = []
        for i, a in enumerate(raw):
            if isinstance(a, torch.Tensor):
                from kforge_oracle_st import short_dtype, UnsupportedDtype
                try:
                    short_dtype(a.dtype)
                except UnsupportedDtype as e:
                    raise OracleError("bad_problem", "input %d: %s" % (i, e))
                args.append(a.detach().to(p.device))
            elif isinstance(a, (bool, int, float)):
                args.append(a)
            else:
                raise OracleError("bad_problem", "input %d is a %s; kforge takes tensors and "
                                  "int/float/bool scalars" % (i, type(a).__name__))
        return redraw(args, dist, seed)

    def _move_plain_tensors(self, model, device):
        """Module.to() leaves plain tensor attributes (an RNN's self.h0) behind; move them."""
        torch = self.torch
        for mod in model.modules():
            for k, v in list(vars(mod).items()):
                if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter) \
                        and v.device.type != torch.device(device).type:
                    setattr(mod, k, v.to(device))

    def _forward(self, model, args):
        torch = self.torch
        call = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        try:
            with torch.no_grad():
                out = model(*call)
        except BaseException as e:
            raise OracleError("raised", "forward: %s" % _exc_text(e))
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for i, o in enumerate(outs):
            if not isinstance(o, torch.Tensor):
                raise OracleError("bad_problem", "output %d is a %s, not a tensor"
                                  % (i, type(o).__name__))
        return outs

    # ---- verbs ----
    def hello(self, req):
        self._need_torch()
        r = {"ok": True}
        r.update(self._env())
        return r

    def load(self, req):
        torch = self._need_torch()
        path = req.get("path")
        if not isinstance(path, str) or not path:
            raise OracleError("bad_request", "load needs a path")
        seed = int(req.get("seed", 0))
        device = req.get("device", "cpu") or "cpu"
        threads = int(req.get("threads", 0) or 0)
        workdir = req.get("workdir") or None
        if device not in ("cpu", "cuda"):
            raise OracleError("bad_request", "unknown device %r" % device)
        if device == "cuda" and "cuda" not in self._devices():
            raise OracleError("device", "CUDA is not available to this torch (%s)"
                              % torch.__version__)
        self.problem = None
        self.last_inputs = None
        if self.ipc is not None:
            self.ipc.clear()
        torch.set_num_threads(threads if threads > 0 else self.default_threads)
        if workdir:
            os.makedirs(workdir, mode=0o700, exist_ok=True)

        self.n_loads += 1
        name = "kforge_problem_%d" % self.n_loads
        if not os.path.isfile(path):
            raise OracleError("load", "no such file: %s" % path)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except BaseException as e:
            raise OracleError("load", _exc_text(e))
        missing = [a for a in ("Model", "get_inputs", "get_init_inputs")
                   if not hasattr(module, a)]
        if missing:
            raise OracleError("no_model", "%s does not define %s" % (
                os.path.basename(path), ", ".join(missing)))

        from kforge_oracle_inputs import seed_all
        seed_all(seed)
        try:
            init = module.get_init_inputs()
            if not isinstance(init, (list, tuple)):
                init = [init]
            model = module.Model(*init)
        except BaseException as e:
            raise OracleError("raised", "Model(*get_init_inputs()): %s" % _exc_text(e))
        if not isinstance(model, torch.nn.Module):
            raise OracleError("bad_problem", "Model(...) is not a torch.nn.Module")
        try:
            model = model.to(device)
            self._move_plain_tensors(model, device)
        except BaseException as e:
            raise OracleError("raised", "moving the model to %s: %s" % (device, _exc_text(e)))
        p = Problem(path=path, module=module, model=model, device=device, seed=seed,
                    workdir=workdir, compiled=None, compile_error=None, index=self.n_loads,
                    model64=None, model64_error=None, param_data=None)
        inputs = self._make_inputs(p, seed)
        self.precision.set("strict")
        outputs = self._forward(model, inputs)
        from kforge_oracle_st import tensor_desc, short_dtype, UnsupportedDtype
        try:
            in_desc = [tensor_desc(a) for a in inputs if isinstance(a, torch.Tensor)]
            out_desc = [tensor_desc(o) for o in outputs]
        except UnsupportedDtype as e:
            raise OracleError("bad_problem", str(e))
        p.inputs = inputs
        p.outputs = outputs
        from kforge_oracle_capture import model_state
        n_state = len(model_state(model)[0])
        self.problem = p
        env = self._env()
        r = {"ok": True, "inputs": in_desc, "outputs": out_desc, "n_params": n_state,
             "torch": env["torch"], "blas": env["blas"], "threads": env["threads"],
             "device": device, "compile": env["compile"]}
        return r

    def graph(self, req):
        p = self._need_problem()
        from kforge_oracle_capture import capture, model_state, CaptureError
        from kforge_oracle_st import write_safetensors
        decompose = req.get("decompose", "default")
        if decompose not in ("default", "none"):
            raise OracleError("bad_request", "decompose must be default or none")
        self.precision.set("strict")
        try:
            names, state = model_state(p.model)
            g, param_data = capture(p.model, names, state, p.inputs, p.outputs, decompose)
        except CaptureError as e:
            raise OracleError("capture", _one_line(str(e)))
        workdir = p.workdir or os.getcwd()
        path = os.path.join(workdir, "params-%d.safetensors" % p.index)
        try:
            write_safetensors(path, param_data)
        except OSError as e:
            raise OracleError("io", "writing %s: %s" % (path, _exc_text(e)))
        p.param_data = param_data
        return {"ok": True, "graph": g, "params_file": path}

    def _model64(self, p):
        """The float64 copy of the model, made once per load (or the reason it cannot be)."""
        torch = self.torch
        if p.model64_error:
            raise OracleError("f64_unavailable", p.model64_error)
        if p.model64 is None:
            try:
                m = copy.deepcopy(p.model).double()
                for mod in m.modules():
                    for k, v in list(vars(mod).items()):
                        if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter) \
                                and v.dtype.is_floating_point:
                            setattr(mod, k, v.double())
            except BaseException as e:
                p.model64_error = "float64 copy of the model: %s" % _exc_text(e)
                raise OracleError("f64_unavailable", p.model64_error)
            p.model64 = m
        return p.model64

    def _forward64(self, p, inputs):
        """Outputs of the float64 model on inputs (float tensors upcast), rounded to the dtypes
        of the model's own outputs (p.outputs, from load)."""
        torch = self.torch
        model = self._model64(p)
        args = [a.double() if isinstance(a, torch.Tensor) and a.dtype.is_floating_point else a
                for a in inputs]
        try:
            outs = self._forward(model, args)
        except OracleError as e:
            raise OracleError("f64_unavailable", "float64 forward: %s" % e.message)
        if len(outs) != len(p.outputs):
            raise OracleError("f64_unavailable", "the float64 model returns %d outputs, not %d"
                              % (len(outs), len(p.outputs)))
        rounded = []
        for i, (o, ref) in enumerate(zip(outs, p.outputs)):
            if tuple(o.shape) != tuple(ref.shape):
                raise OracleError("f64_unavailable", "float64 output %d has shape %s, not %s"
                                  % (i, tuple(o.shape), tuple(ref.shape)))
            rounded.append(o.to(dtype=ref.dtype))
        return rounded

    def case(self, req):
        torch = self._need_torch()
        p = self._need_problem()
        from kforge_oracle_inputs import DISTS
        from kforge_oracle_st import write_safetensors
        seed = int(req.get("seed", 0))
        dist = req.get("dist", "default") or "default"
        reference = req.get("reference", "f32") or "f32"
        path = req.get("file")
        if dist not in DISTS:
            raise OracleError("bad_request", "unknown dist %r" % dist)
        if reference not in ("f32", "f64"):
            raise OracleError("bad_request", "unknown reference %r (f32 or f64)" % reference)
        ipc = bool(req.get("ipc", False))
        if not ipc and (not isinstance(path, str) or not path):
            raise OracleError("bad_request", "case needs a file")
        if ipc:
            self._ipc_store(p)
        inputs = self._make_inputs(p, seed, dist)
        saved = [a.detach().clone() for a in inputs if isinstance(a, torch.Tensor)]
        if p.device == "cuda":
            self.last_inputs = ((p.index, seed, dist),
                                [a.detach().clone() if isinstance(a, torch.Tensor) else a
                                 for a in inputs])
        self.precision.set("strict")
        if reference == "f64":
            outputs = self._forward64(p, inputs)
        else:
            outputs = self._forward(p.model, inputs)
        named = [("in.%d" % i, t) for i, t in enumerate(saved)]
        named += [("out.%d" % i, t) for i, t in enumerate(outputs)]
        if ipc:
            return self._ipc_export(named)
        try:
            write_safetensors(path, named)
        except OSError as e:
            raise OracleError("io", "writing %s: %s" % (path, _exc_text(e)))
        return {"ok": True, "file": path}

    def _ipc_store(self, p):
        if p.device != "cuda":
            raise OracleError("ipc_unavailable", "the problem runs on %s, not cuda" % p.device)
        if self.ipc is None:
            from kforge_oracle_ipc import IpcStore
            self.ipc = IpcStore()
        return self.ipc

    def _ipc_export(self, named):
        from kforge_oracle_ipc import IpcUnavailable
        try:
            gid, descs = self.ipc.export(named)
        except IpcUnavailable as e:
            raise OracleError("ipc_unavailable", str(e))
        return {"ok": True, "id": gid, "tensors": descs}

    def params_ipc(self, req):
        p = self._need_problem()
        self._ipc_store(p)
        if p.param_data is None:
            raise OracleError("not_loaded", "params_ipc needs a graph capture first")
        return self._ipc_export(list(p.param_data))

    def release(self, req):
        self._need_torch()
        ids = req.get("ids", [])
        if not isinstance(ids, list):
            raise OracleError("bad_request", "release needs a list of ids")
        n = self.ipc.release(ids) if self.ipc is not None else 0
        return {"ok": True, "released": n}

    def _compiled(self, p):
        torch = self.torch
        if not hasattr(torch, "compile"):
            raise OracleError("unavailable", "torch %s has no torch.compile" % torch.__version__)
        if p.compile_error:
            raise OracleError("compile", p.compile_error)
        if p.compiled is None:
            try:
                p.compiled = torch.compile(p.model)
            except BaseException as e:
                p.compile_error = "torch.compile: %s" % _exc_text(e)
                raise OracleError("compile", p.compile_error)
        return p.compiled

    def time(self, req):
        torch = self._need_torch()
        p = self._need_problem()
        mode = req.get("mode", "eager")
        seed = int(req.get("seed", 0))
        runs = int(req.get("runs", 20))
        warmup = int(req.get("warmup", 3))
        flush = int(req.get("flush_bytes", 0) or 0)
        prec = req.get("precision", "strict") or "strict"
        if mode not in ("eager", "compile"):
            raise OracleError("bad_request", "unknown mode %r" % mode)
        if prec not in ("strict", "default"):
            raise OracleError("bad_request", "unknown precision %r" % prec)
        if runs < 1 or warmup < 0:
            raise OracleError("bad_request", "runs must be >= 1 and warmup >= 0")
        fn = p.model if mode == "eager" else self._compiled(p)
        memo = self.last_inputs
        if p.device == "cuda" and memo is not None and memo[0] == (p.index, seed, "default"):
            inputs = [a.clone() if isinstance(a, torch.Tensor) else a for a in memo[1]]
        else:
            inputs = self._make_inputs(p, seed)
        self.precision.set(prec)
        cuda = p.device == "cuda"
        buf = torch.empty(flush, dtype=torch.uint8, device=p.device) if flush > 0 else None
        kind = "raised" if mode == "eager" else "compile"
        times = []
        try:
            with torch.no_grad():
                for _ in range(warmup):
                    fn(*inputs)
                if cuda:
                    torch.cuda.synchronize()
                for i in range(runs):
                    if buf is not None:
                        buf.fill_(i % 251)
                    if cuda:
                        start = torch.cuda.Event(enable_timing=True)
                        end = torch.cuda.Event(enable_timing=True)
                        start.record()
                        fn(*inputs)
                        end.record()
                        end.synchronize()
                        times.append(float(start.elapsed_time(end)))
                    else:
                        t0 = time.perf_counter_ns()
                        fn(*inputs)
                        t1 = time.perf_counter_ns()
                        times.append((t1 - t0) / 1e6)
        except OracleError:
            raise
        except BaseException as e:
            if mode == "compile":
                p.compile_error = "torch.compile: %s" % _exc_text(e)
            raise OracleError(kind, "%s run: %s" % (mode, _exc_text(e)))
        finally:
            self.precision.set("strict")
        return {"ok": True, "times_ms": times}

    def handle(self, line):
        import json
        try:
            req = json.loads(line)
        except ValueError as e:
            return {"ok": False, "error": "bad_request", "message": "not JSON: %s" % e}, False
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": "bad_request", "message": "request needs a cmd"}, False
        cmd = req["cmd"]
        if cmd == "quit":
            return {"ok": True}, True
        verbs = {"hello": self.hello, "load": self.load, "graph": self.graph,
                 "case": self.case, "time": self.time, "params_ipc": self.params_ipc,
                 "release": self.release}
        if cmd not in verbs:
            return {"ok": False, "error": "bad_request", "message": "unknown cmd %r" % cmd}, False
        try:
            return verbs[cmd](req), False
        except OracleError as e:
            return {"ok": False, "error": e.kind, "message": _one_line(e.message)}, False
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            traceback.print_exc(file=sys.stderr)
            return {"ok": False, "error": "internal", "message": _exc_text(e)}, False


def main():
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    oracle = Oracle()
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            reply, stop = oracle.handle(line)
        except (KeyboardInterrupt, SystemExit) as e:
            reply, stop = {"ok": False, "error": "raised", "message": _exc_text(e)}, False
        try:
            text = dumps(reply)
        except BaseException as e:
            text = dumps({"ok": False, "error": "internal",
                           "message": "reply not encodable: %s" % _exc_text(e)})
        proto.write(text + "\n")
        proto.flush()
        if stop:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
