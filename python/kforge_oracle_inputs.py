"""kforge_oracle_inputs: seeding, input redraws from other distributions, precision modes.

dist "default" keeps get_inputs() as is. Otherwise every floating tensor input is redrawn with
the same shape and dtype (drawn in float32 on the CPU from a generator derived from the seed,
then cast and moved):
  "normal":  N(0,1) * s, s uniform in [0.5, 4] per tensor
  "uniform": U(-a, a), a uniform in [0.5, 5] per tensor
  "heavy":   z / sqrt(chi2_3 / 3) (Student t with 3 degrees of freedom), clipped to +-1e4
Non-floating inputs keep the values get_inputs() made under the seed."""

import random
import sys

import torch

DISTS = ("default", "normal", "uniform", "heavy")


def seed_all(seed):
    """torch (CPU and CUDA), Python's random and numpy if the problem imported it."""
    torch.manual_seed(seed)
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed(seed % (2 ** 32))
        except Exception:
            pass


def _generator(seed, device=None):
    g = torch.Generator() if device is None else torch.Generator(device=device)
    g.manual_seed((seed * 6364136223846793005 + 1442695040888963407) % (2 ** 63))
    return g


def _uniform(g, lo, hi):
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def redraw(inputs, dist, seed):
    """Return inputs with floating tensors redrawn from dist (see the file header). Tensors on
    the CPU are drawn from one CPU generator (also used for the per-tensor scales); tensors on
    a GPU are drawn there, from a generator of that device seeded the same way, so a 1 GiB
    redraw costs milliseconds instead of seconds. Either way the same seed gives the same
    values, bit for bit."""
    if dist == "default":
        return list(inputs)
    g = _generator(seed)
    on_device = {}
    out = []
    for a in inputs:
        if not isinstance(a, torch.Tensor) or not a.dtype.is_floating_point:
            out.append(a)
            continue
        shape = tuple(a.shape)
        dev = a.device
        if dev.type == "cpu":
            tg, kw = g, {}
        else:
            tg = on_device.get(str(dev))
            if tg is None:
                tg = on_device[str(dev)] = _generator(seed, dev)
            kw = {"device": dev}
        if dist == "normal":
            v = torch.randn(shape, generator=tg, **kw) * _uniform(g, 0.5, 4.0)
        elif dist == "uniform":
            amp = _uniform(g, 0.5, 5.0)
            v = (torch.rand(shape, generator=tg, **kw) * 2.0 - 1.0) * amp
        else:
            z = torch.randn(shape, generator=tg, **kw)
            chi2 = torch.randn((3,) + shape, generator=tg, **kw).pow(2).sum(0)
            v = (z / torch.sqrt(chi2 / 3.0)).clamp(-1e4, 1e4)
            v = torch.nan_to_num(v, nan=0.0, posinf=1e4, neginf=-1e4)
        out.append(v.to(dtype=a.dtype, device=a.device))
    return out


class Precision:
    """Switches TF32 use between "strict" (off) and torch's own defaults, as found at start."""

    def __init__(self):
        self.defaults = {}
        for obj, attr in self._flags():
            try:
                self.defaults[(id(obj), attr)] = getattr(obj, attr)
            except Exception:
                pass
        get = getattr(torch, "get_float32_matmul_precision", None)
        self.default_matmul = get() if get else None

    @staticmethod
    def _flags():
        out = []
        cuda = getattr(torch.backends, "cuda", None)
        mm = getattr(cuda, "matmul", None) if cuda is not None else None
        if mm is not None and hasattr(mm, "allow_tf32"):
            out.append((mm, "allow_tf32"))
        cudnn = getattr(torch.backends, "cudnn", None)
        if cudnn is not None and hasattr(cudnn, "allow_tf32"):
            out.append((cudnn, "allow_tf32"))
        return out

    def set(self, mode):
        for obj, attr in self._flags():
            key = (id(obj), attr)
            if key not in self.defaults:
                continue
            value = False if mode == "strict" else self.defaults[key]
            try:
                if getattr(obj, attr) != value:
                    setattr(obj, attr, value)
            except Exception:
                pass
        setp = getattr(torch, "set_float32_matmul_precision", None)
        if setp is not None and self.default_matmul is not None:
            want = "highest" if mode == "strict" else self.default_matmul
            try:
                if torch.get_float32_matmul_precision() != want:
                    setp(want)
            except Exception:
                pass
