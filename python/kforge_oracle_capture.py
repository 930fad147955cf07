"""kforge_oracle_capture: capture a module's forward as a functional ATen graph (kf_graph JSON).

How: params, buffers and plain tensor attributes become graph inputs through functional_call
(torch.func on 2.x, torch.nn.utils.stateless on 1.13); the forward is traced with make_fx and
the decompositions below, then that graph is traced again under functionalization
(torch.func.functionalize on 2.x, functorch.functionalize on 1.13, remove="mutations"), so
in-place ops, also those inside decompositions, become pure ops. Capture runs with cuDNN and
oneDNN off and attention on its math path, so graphs do not depend on the device's backends
(no cudnn_batch_norm, _cudnn_rnn, mkldnn_rnn_layer or fused attention ops). Afterwards: copy_ into graph inputs (batch-norm running stats,
num_batches_tracked, inputs mutated in place) is dropped since it cannot change the outputs;
identity ops (detach, alias, lift_fresh, lift_fresh_copy) are folded into their input; dead code
is removed. Lifted constant tensors (get_attr, e.g. _tensor_constant0) become params, labelled
with the module attribute they are when they are one (1.13's LSTM reads its weights that way).
_reshape_alias (1.13) and _unsafe_view become view (reshape only picks them where a view works,
and the checked run proves it). A forward that draws random numbers (dropout with p > 0 in
training mode) is refused with a capture error.

Decompositions ("decompose":"default"): only the ops in KF_DECOMPOSE below, and only where this
torch has an ATen-level decomposition for them (never prims). They turn rare composite ops into
common ones: activations (silu, hardswish, hardsigmoid, mish, softplus, elu, celu, selu, relu6,
glu, leaky_relu, hardtanh, softshrink, hardshrink, threshold, log_sigmoid_forward, logit),
losses (mse, huber, smooth_l1, binary_cross_entropy[_with_logits], soft_margin, hinge_embedding,
margin_ranking), misc (addcmul, addcdiv, logsumexp, lerp, xlogy, std/var(_mean), norm, mv, dot,
addr, rsub, masked_fill, split/split_with_sizes/unbind, nan_to_num, lstm/gru/rnn where the torch
has them), and kforge's own for the CUDA-only _thnn_fused_lstm_cell / _thnn_fused_gru_cell.
"decompose":"none" applies nothing.

Ops kept as they are (they may appear in graphs): convolution, mm, addmm, bmm, baddbmm,
max_pool2d_with_indices (and 1d/3d forms), avg_pool1d/2d/3d, _adaptive_avg_pool2d,
native_batch_norm (1.13) / _native_batch_norm_legit_functional or _no_training (2.x),
native_layer_norm, native_group_norm, _softmax, _log_softmax, gelu, relu, sigmoid, tanh, and
the pointwise, reduction, view (view, t, permute, expand, unsqueeze, squeeze, slice, select,
_unsafe_view, transpose) and creation ops that make_fx records. Scalars may appear in Tensor
slots (aten.mul.Tensor(x, 2.0)): they are emitted as int/float args.

Arg encoding (src/ir/kf_graph.h): every schema argument, defaults filled in, by name. Tensors
{"tensor":name}; lists {"list":[..]}; bool/int/float; dtype/layout/device/memory_format/str
{"str":..} (dtype as "f32"...); None {"none":true}. Non-finite floats are written as the
strings "inf", "-inf" and "nan" ({"float":"-inf"}), which src/ir/kf_graph.c reads."""

import contextlib
import math
import operator

import torch
import torch.fx
from torch.fx.experimental.proxy_tensor import make_fx

from kforge_oracle_st import short_dtype, tensor_desc_strided, UnsupportedDtype


class CaptureError(Exception):
    """The forward could not be captured as a functional ATen graph (message says why)."""


KF_DECOMPOSE = [
    "silu", "hardswish", "hardsigmoid", "mish", "softplus", "elu", "celu", "selu", "relu6",
    "glu", "leaky_relu", "hardtanh", "softshrink", "hardshrink", "threshold",
    "log_sigmoid_forward", "logit",
    "mse_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "soft_margin_loss", "hinge_embedding_loss",
    "margin_ranking_loss",
    "addcmul", "addcdiv", "logsumexp", "lerp", "xlogy", "std", "var", "std_mean", "var_mean",
    "norm", "mv", "dot", "addr", "rsub", "masked_fill", "split", "split_with_sizes", "unbind",
    "nan_to_num", "lstm", "gru", "rnn_tanh", "rnn_relu", "_safe_softmax",
]

_IDENTITY_OPS = ("detach", "alias", "lift_fresh", "lift_fresh_copy")
_RANDOM_OPS = frozenset((
    "bernoulli", "bernoulli_", "rand", "randn", "randint", "rand_like", "randn_like",
    "randint_like", "normal", "normal_", "uniform", "uniform_", "native_dropout",
    "_fused_dropout", "multinomial", "randperm", "exponential", "exponential_", "geometric",
    "geometric_", "cauchy", "cauchy_", "log_normal", "log_normal_", "random", "random_",
    "poisson", "rrelu_with_noise"))


def model_state(model):
    """(names, tensors): parameters, buffers, then plain tensor attributes of any submodule
    (e.g. an LSTM's initial state kept as self.h0), which functionalization needs as inputs
    too. Tied tensors appear once."""
    names, tensors, seen = [], [], set()

    def add(name, t):
        if id(t) in seen:
            return
        seen.add(id(t))
        names.append(name)
        tensors.append(t)

    for n, t in model.named_parameters():
        add(n, t)
    for n, t in model.named_buffers():
        add(n, t)
    for mn, mod in model.named_modules():
        for k, v in vars(mod).items():
            if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter):
                add("%s.%s" % (mn, k) if mn else k, v)
    return names, tensors


def _functional_call():
    f = getattr(getattr(torch, "func", None), "functional_call", None)
    if f is not None:
        return f
    from torch.nn.utils.stateless import functional_call
    return functional_call


def _functionalize():
    f = getattr(getattr(torch, "func", None), "functionalize", None)
    if f is not None:
        return f
    try:
        from functorch import functionalize
        return functionalize
    except ImportError:
        return None


def _is_prims_free(fn, ov):
    """True if a decomposition is written in ATen terms (1.13 maps some ops to prims refs)."""
    mod = getattr(fn, "__module__", "") or ""
    return not mod.startswith("torch._refs") and not mod.startswith("torch._prims")


def _fused_lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    gates = input_gates + hidden_gates
    if input_bias is not None:
        gates = gates + input_bias
    if hidden_bias is not None:
        gates = gates + hidden_bias
    i, f, g, o = gates.chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    cy = f * cx + i * g
    hy = o * cy.tanh()
    return hy, cy, torch.cat([i, f, g, o], 1)


def _fused_gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    if input_bias is not None:
        input_gates = input_gates + input_bias
    if hidden_bias is not None:
        hidden_gates = hidden_gates + hidden_bias
    ir, ii, inew = input_gates.chunk(3, 1)
    hr, hi, hnew = hidden_gates.chunk(3, 1)
    r = (ir + hr).sigmoid()
    z = (ii + hi).sigmoid()
    n = (inew + r * hnew).tanh()
    hy = n + z * (hx - n)
    return hy, torch.cat([r, z, inew, hnew, hx], 1)


def _kforge_decompositions():
    """CUDA-only fused RNN cells (what the generic LSTM/GRU calls on a GPU with cuDNN off),
    written out in plain ops; the checked run compares them with the module."""
    table = {}
    for name, fn in (("_thnn_fused_lstm_cell", _fused_lstm_cell),
                     ("_thnn_fused_gru_cell", _fused_gru_cell)):
        packet = getattr(torch.ops.aten, name, None)
        ov = getattr(packet, "default", None) if packet is not None else None
        if ov is not None:
            table[ov] = fn
    return table


def decomposition_table(mode):
    if mode == "none":
        return {}
    from torch._decomp import decomposition_table as full
    wanted = set(KF_DECOMPOSE)
    table = {}
    for ov, fn in full.items():
        packet = getattr(ov, "overloadpacket", None)
        name = getattr(packet, "__name__", "") if packet is not None else ""
        if name in wanted and _is_prims_free(fn, ov):
            table[ov] = fn
    table.update(_kforge_decompositions())
    return table


def _op_base(target):
    packet = getattr(target, "overloadpacket", None)
    return getattr(packet, "__name__", "") if packet is not None else ""


def _simplify(gm):
    """Drop copy_ into placeholders, fold identity ops, remove dead code."""
    g = gm.graph
    for n in list(g.nodes):
        if n.op != "call_function":
            continue
        base = _op_base(n.target)
        if base == "copy_" and n.args and getattr(n.args[0], "op", None) == "placeholder":
            if n.users:
                n.replace_all_uses_with(n.args[0])
            g.erase_node(n)
        elif base in _IDENTITY_OPS and n.args and isinstance(n.args[0], torch.fx.Node):
            n.replace_all_uses_with(n.args[0])
            g.erase_node(n)
        elif base in ("_reshape_alias", "_unsafe_view"):
            # reshape picked these because a view was possible (the checked run proves it)
            n.target = torch.ops.aten.view.default
            n.args = (n.args[0], list(n.args[1]))
            n.kwargs = {}
    changed = True
    while changed:
        changed = False
        for n in reversed(list(g.nodes)):
            if n.op in ("call_function", "get_attr") and not n.users:
                g.erase_node(n)
                changed = True
    for n in g.nodes:
        if n.op == "call_function" and _op_base(n.target) in _RANDOM_OPS:
            raise CaptureError("the forward draws random numbers (%s); kforge needs a "
                               "deterministic forward (dropout with p > 0 in training mode?)"
                               % n.target)
    for n in g.nodes:
        if n.op == "call_function":
            sch = getattr(n.target, "_schema", None)
            if sch is not None and any(a.alias_info is not None and a.alias_info.is_write
                                       for a in sch.arguments):
                raise CaptureError("in-place op %s survived functionalization" % n.target)
    gm.recompile()
    return gm


def _set_flag(obj, attr, value):
    """Sets obj.attr, returning a function that puts the old value back (no-op if absent)."""
    try:
        old = getattr(obj, attr)
        setattr(obj, attr, value)
    except Exception:
        return lambda: None

    def restore():
        try:
            setattr(obj, attr, old)
        except Exception:
            pass
    return restore


@contextlib.contextmanager
def portable_kernels():
    """Backend-neutral capture: cuDNN and oneDNN off (else batch norm is recorded as
    cudnn_batch_norm and RNNs as _cudnn_rnn / mkldnn_rnn_layer), scaled-dot-product attention
    on its math path (else _scaled_dot_product_flash_attention_for_cpu and friends)."""
    restores = [_set_flag(torch.backends.cudnn, "enabled", False)]
    mkldnn = getattr(torch.backends, "mkldnn", None)
    if mkldnn is not None:
        restores.append(_set_flag(mkldnn, "enabled", False))
    with contextlib.ExitStack() as stack:
        attention = getattr(torch.nn, "attention", None)
        try:
            if attention is not None and hasattr(attention, "sdpa_kernel"):
                stack.enter_context(attention.sdpa_kernel([attention.SDPBackend.MATH]))
            elif hasattr(torch.backends.cuda, "sdp_kernel"):
                stack.enter_context(torch.backends.cuda.sdp_kernel(
                    enable_flash=False, enable_math=True, enable_mem_efficient=False))
        except Exception:
            pass
        try:
            yield
        finally:
            for r in reversed(restores):
                r()


def trace(model, state_names, state, args, decompose):
    """make_fx trace of model.forward(*args) with state (params+buffers) as leading inputs.
    args: the forward's arguments (tensors traced as inputs, other values baked in).
    Two passes: make_fx with the decompositions (which may use in-place ops), then make_fx of
    that graph under functionalization. Falls back to one functionalized pass."""
    fcall = _functional_call()
    functionalize = _functionalize()
    n_state = len(state)
    tensor_pos = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    table = decomposition_table(decompose)

    def fwd(*flat):
        st = dict(zip(state_names, flat[:n_state]))
        call_args = list(args)
        for k, pos in enumerate(tensor_pos):
            call_args[pos] = flat[n_state + k]
        out = fcall(model, st, tuple(call_args))
        if isinstance(out, (tuple, list)):
            return tuple(out)
        return (out,)

    def fresh():
        return [t.detach().contiguous().clone() for t in state] + \
            [args[i].detach().contiguous().clone() for i in tensor_pos]

    with torch.no_grad():
        if functionalize is None:
            return _simplify(make_fx(fwd, decomposition_table=table)(*fresh()))
        try:
            gm1 = make_fx(fwd, decomposition_table=table)(*fresh())
            gm = make_fx(functionalize(gm1, remove="mutations"))(*fresh())
        except Exception as two_pass:
            try:
                gm = make_fx(functionalize(fwd, remove="mutations"),
                             decomposition_table=table)(*fresh())
            except Exception:
                raise two_pass
    return _simplify(gm)


class _Recorder(torch.fx.Interpreter):
    def __init__(self, gm):
        super().__init__(gm)
        self.env_out = {}

    def run_node(self, n):
        r = super().run_node(n)
        self.env_out[n] = r
        return r


def run_graph(gm, flat):
    """Run the captured graph; returns (outputs tuple, {node: result})."""
    rec = _Recorder(gm)
    with torch.no_grad():
        outs = rec.run(*flat)
    return outs, rec.env_out


def _enc_float(f):
    if math.isnan(f):
        return {"float": "nan"}
    if math.isinf(f):
        return {"float": "inf" if f > 0 else "-inf"}
    return {"float": f}


def _enc_value(v, names):
    if isinstance(v, torch.fx.Node):
        if v not in names:
            raise CaptureError("argument %s is not a tensor value" % v.name)
        return {"tensor": names[v]}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return _enc_float(v)
    if v is None:
        return {"none": True}
    if isinstance(v, torch.dtype):
        return {"str": short_dtype(v)}
    if isinstance(v, (torch.layout, torch.memory_format)):
        return {"str": str(v).replace("torch.", "")}
    if isinstance(v, torch.device):
        return {"str": str(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (list, tuple)):
        return {"list": [_enc_value(x, names) for x in v]}
    raise CaptureError("cannot encode argument of type %s" % type(v).__name__)


def _node_args(n, names):
    sch = n.target._schema
    out = []
    for i, a in enumerate(sch.arguments):
        if not a.kwarg_only and i < len(n.args):
            v = n.args[i]
        elif a.name in n.kwargs:
            v = n.kwargs[a.name]
        elif a.has_default_value():
            v = a.default_value
        else:
            v = None
        e = _enc_value(v, names)
        d = {"name": a.name}
        d.update(e)
        out.append(d)
    return out


def _tensor_key(t):
    return (t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()), str(t.device))


def to_json(gm, env, n_state, state_labels, n_inputs, const_labels=None):
    """kf_graph JSON for a simplified graph module and the per-node results of a run.
    Returns (graph dict, [(param value name, tensor)] for the params file)."""
    names = {}
    values = {}
    inputs, params, param_names, param_data = [], [], {}, []
    used = set()

    def claim(name):
        base, k = name, 1
        while name in used:
            name = "%s_%d" % (base, k)
            k += 1
        used.add(name)
        return name

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    # reserve x*/p* names first so node names never collide with them
    for i in range(n_inputs):
        used.add("x%d" % i)
    for k, n in enumerate(placeholders[n_state:]):
        nm = "x%d" % k
        names[n] = nm
        inputs.append(nm)
        values[nm] = tensor_desc_strided(env[n])
    pk = 0
    for k, n in enumerate(placeholders[:n_state]):
        if not n.users:
            continue
        nm = claim("p%d" % pk)
        pk += 1
        names[n] = nm
        params.append(nm)
        param_names[nm] = state_labels[k]
        values[nm] = tensor_desc_strided(env[n])
        param_data.append((nm, env[n]))
    for n in gm.graph.nodes:
        if n.op == "get_attr":
            t = env[n]
            if not isinstance(t, torch.Tensor):
                raise CaptureError("constant %s is not a tensor" % n.target)
            nm = claim("p%d" % pk)
            pk += 1
            names[n] = nm
            params.append(nm)
            param_names[nm] = (const_labels or {}).get(_tensor_key(t), str(n.target))
            values[nm] = tensor_desc_strided(t)
            param_data.append((nm, t))

    nodes = []
    output_node = None
    for n in gm.graph.nodes:
        if n.op == "output":
            output_node = n
            continue
        if n.op != "call_function":
            continue
        if n.target is operator.getitem:
            continue
        if not hasattr(n.target, "_schema"):
            raise CaptureError("node %s calls %s, which is not an ATen op" % (n.name, n.target))
        r = env[n]
        outs = []
        if isinstance(r, torch.Tensor):
            nm = claim(n.name)
            names[n] = nm
            values[nm] = tensor_desc_strided(r)
            outs.append(nm)
        elif isinstance(r, (tuple, list)):
            by_index = {}
            for u in n.users:
                if u.op == "call_function" and u.target is operator.getitem:
                    by_index[u.args[1]] = u
            for i, item in enumerate(r):
                u = by_index.get(i)
                if u is None:
                    outs.append("")
                    continue
                if not isinstance(item, torch.Tensor):
                    raise CaptureError("%s returns a non-tensor at %d" % (n.target, i))
                nm = claim(u.name)
                names[u] = nm
                values[nm] = tensor_desc_strided(item)
                outs.append(nm)
        else:
            raise CaptureError("%s returns a %s, not a tensor (data-dependent value?)"
                               % (n.target, type(r).__name__))
        nodes.append({"op": str(n.target), "outputs": outs, "args": _node_args(n, names)})

    outputs = []
    for a in _flat_outputs(output_node):
        if not isinstance(a, torch.fx.Node) or a not in names:
            raise CaptureError("an output of the forward is not a tensor")
        outputs.append(names[a])
    graph = {"inputs": inputs, "params": params, "outputs": outputs, "values": values,
             "param_names": param_names, "nodes": nodes}
    return graph, param_data


def _flat_outputs(output_node):
    a = output_node.args[0]
    if isinstance(a, (tuple, list)):
        return list(a)
    return [a]


def capture(model, state_names, state, args, ref_outputs, decompose="default"):
    """Trace, simplify, run on args and compare with ref_outputs. Returns (graph dict,
    param data list). Raises CaptureError if anything is off."""
    with portable_kernels():
        try:
            gm = trace(model, state_names, state, args, decompose)
        except CaptureError:
            raise
        except Exception as e:
            raise CaptureError("trace failed: %s: %s" % (type(e).__name__, e))
        tensor_args = [a for a in args if isinstance(a, torch.Tensor)]
        # kforge hands params and inputs over contiguous (the files are), so the graph is
        # traced and checked with contiguous ones
        state = [t.detach().contiguous() for t in state]
        flat = list(state) + [t.detach().contiguous().clone() for t in tensor_args]
        try:
            outs, env = run_graph(gm, flat)
        except Exception as e:
            raise CaptureError("captured graph failed to run: %s: %s" % (type(e).__name__, e))
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    if len(outs) != len(ref_outputs):
        raise CaptureError("graph has %d outputs, module %d" % (len(outs), len(ref_outputs)))
    for i, (a, b) in enumerate(zip(outs, ref_outputs)):
        if not isinstance(a, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            raise CaptureError("output %d: graph gives %s, module %s" % (
                i, _desc(a), _desc(b)))
        if not _close(a, b):
            diff = (a.double() - b.double()).abs()
            diff = diff[torch.isfinite(diff)]
            md = float(diff.max()) if diff.numel() else float("nan")
            raise CaptureError("output %d of the captured graph differs from the module "
                               "(max abs diff %g)" % (i, md))
    try:
        labels = {_tensor_key(t): nm for nm, t in zip(state_names, state)}
        return to_json(gm, env, len(state), state_names, len(tensor_args), labels)
    except UnsupportedDtype as e:
        raise CaptureError(str(e))


def _desc(t):
    if isinstance(t, torch.Tensor):
        return "%s%s" % (t.dtype, list(t.shape))
    return type(t).__name__


def _close(a, b):
    if a.dtype.is_floating_point:
        tol = 1e-2 if a.dtype in (torch.float16, torch.bfloat16) else 1e-4
        return bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol, equal_nan=True))
    return bool(torch.equal(a, b))
