/* kf_program_validate.c: consistency checks on a kernel program (names, references, launch
 * arguments against kernel params, step extents inside buffers, conv shapes) and, given the
 * problem graph,
 * that the program's inputs, outputs and params match the graph's. Messages name the step,
 * buffer or kernel at fault, in the words of docs/program-format.md. */
#include "ir/kf_program.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int kf_is_ident(const char *s) {
    if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static int kf_buf_ok(const kf_program *p, int i) { return i >= 0 && i < p->n_bufs; }

/* Index of the last element touched by a batched row-major matrix access, or -1 on overflow:
 * (batch-1)*stride + (rows-1)*ld + (cols-1). */
static int64_t kf_last_elem(int64_t batch, int64_t stride, int64_t rows, int64_t ld,
                            int64_t cols) {
    int64_t a, b, r;
    if (__builtin_mul_overflow(batch - 1, stride, &a)) return -1;
    if (__builtin_mul_overflow(rows - 1, ld, &b)) return -1;
    if (__builtin_add_overflow(a, b, &r)) return -1;
    if (__builtin_add_overflow(r, cols - 1, &r)) return -1;
    return r;
}

static int kf_check_bufs(const kf_program *p, kf_err *err) {
    int n_in = 0, n_out = 0;
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_pbuf *b = &p->bufs[i];
        if (!b->name || !b->name[0]) return kf_fail(err, KF_E_INVALID, "buffer %d has no name", i);
        for (int k = 0; k < i; k++)
            if (p->bufs[k].name && strcmp(p->bufs[k].name, b->name) == 0)
                return kf_fail(err, KF_E_INVALID, "buffer '%s' is declared twice", b->name);
        if ((int)b->role < KF_BUF_INPUT || b->role > KF_BUF_SCRATCH)
            return kf_fail(err, KF_E_INVALID, "buffer '%s' has an unknown role", b->name);
        if ((int)b->desc.dtype < 0 || b->desc.dtype >= KF_DTYPE_COUNT)
            return kf_fail(err, KF_E_INVALID, "buffer '%s' has an unknown dtype", b->name);
        if (b->desc.ndim < 0 || b->desc.ndim > KF_MAX_DIMS)
            return kf_fail(err, KF_E_INVALID, "buffer '%s' has %d dimensions", b->name,
                           b->desc.ndim);
        for (int d = 0; d < b->desc.ndim; d++)
            if (b->desc.shape[d] < 0)
                return kf_fail(err, KF_E_INVALID, "buffer '%s': shape[%d] is negative", b->name, d);
        if (b->nbytes != kf_tdesc_nbytes(&b->desc))
            return kf_fail(err, KF_E_INVALID, "buffer '%s': nbytes %zu does not match its "
                           "shape (%zu)", b->name, b->nbytes, kf_tdesc_nbytes(&b->desc));
        if (b->role == KF_BUF_INPUT) n_in++;
        if (b->role == KF_BUF_OUTPUT) n_out++;
        if (b->role == KF_BUF_PARAM && (!b->param || !b->param[0]))
            return kf_fail(err, KF_E_INVALID, "buffer '%s' (param) does not name a graph param",
                           b->name);
    }
    /* Input and output indices are 0..n-1, each used once. */
    for (int pass = 0; pass < 2; pass++) {
        kf_buf_role role = pass ? KF_BUF_OUTPUT : KF_BUF_INPUT;
        int n = pass ? n_out : n_in;
        for (int i = 0; i < p->n_bufs; i++) {
            const kf_pbuf *b = &p->bufs[i];
            if (b->role != role) continue;
            if (b->index < 0 || b->index >= n)
                return kf_fail(err, KF_E_INVALID, "buffer '%s' (%s): index %d is out of range; "
                               "the %d %s buffers must use indices 0..%d", b->name,
                               kf_buf_role_name(role), b->index, n, kf_buf_role_name(role), n - 1);
            for (int k = 0; k < i; k++)
                if (p->bufs[k].role == role && p->bufs[k].index == b->index)
                    return kf_fail(err, KF_E_INVALID, "buffers '%s' and '%s' are both %s %d",
                                   p->bufs[k].name, b->name, kf_buf_role_name(role), b->index);
        }
    }
    if (n_out == 0) return kf_fail(err, KF_E_INVALID, "the program has no output buffer");
    return 0;
}

static int kf_check_kernels(const kf_program *p, kf_err *err) {
    for (int i = 0; i < p->n_sources; i++) {
        const char *f = p->sources[i].file;
        if (!kf_program_source_name_ok(f))
            return kf_fail(err, KF_E_INVALID, "source %d: unsafe file name '%s' (must be "
                           "relative, without '..')", i, f ? f : "");
        for (int k = 0; k < i; k++)
            if (strcmp(p->sources[k].file, f) == 0)
                return kf_fail(err, KF_E_INVALID, "source '%s' is listed twice", f);
    }
    if (p->n_kernels > 0 && p->n_sources == 0)
        return kf_fail(err, KF_E_INVALID, "the program declares kernels but lists no sources");
    for (int i = 0; i < p->n_kernels; i++) {
        const kf_pkernel *k = &p->kernels[i];
        if (!kf_is_ident(k->name))
            return kf_fail(err, KF_E_INVALID, "kernel %d: name '%s' is not a C identifier", i,
                           k->name ? k->name : "");
        for (int j = 0; j < i; j++)
            if (strcmp(p->kernels[j].name, k->name) == 0)
                return kf_fail(err, KF_E_INVALID, "kernel '%s' is declared twice", k->name);
        for (int a = 0; a < k->n_params; a++) {
            const kf_kparam *q = &k->params[a];
            if (!kf_is_ident(q->name))
                return kf_fail(err, KF_E_INVALID, "kernel '%s': param %d name '%s' is not a C "
                               "identifier", k->name, a, q->name ? q->name : "");
            if ((int)q->kind < KF_KP_PTR || q->kind > KF_KP_F32)
                return kf_fail(err, KF_E_INVALID, "kernel '%s': param '%s' has an unknown kind",
                               k->name, q->name);
            for (int b = 0; b < a; b++)
                if (strcmp(k->params[b].name, q->name) == 0)
                    return kf_fail(err, KF_E_INVALID, "kernel '%s': param '%s' is declared twice",
                                   k->name, q->name);
        }
    }
    return 0;
}

/* A step may write dst only if it is an output or scratch buffer. */
static int kf_check_writable(const kf_program *p, int buf, const char *where, const char *what,
                             kf_err *err) {
    const kf_pbuf *b = &p->bufs[buf];
    if (b->role == KF_BUF_INPUT || b->role == KF_BUF_PARAM)
        return kf_fail(err, KF_E_INVALID, "%s: %s '%s' is %s %s buffer, which steps may not "
                       "write", where, what, b->name, b->role == KF_BUF_INPUT ? "an" : "a",
                       kf_buf_role_name(b->role));
    return 0;
}

static int kf_check_launch(const kf_program *p, const kf_step *s, int si, kf_err *err) {
    char where[200];
    if (s->kernel < 0 || s->kernel >= p->n_kernels)
        return kf_fail(err, KF_E_INVALID, "step %d (launch): kernel index %d does not name a "
                       "declared kernel", si, s->kernel);
    const kf_pkernel *k = &p->kernels[s->kernel];
    snprintf(where, sizeof where, "step %d (launch %s)", si, k->name);
    if (s->n_args != k->n_params) {
        char names[512] = "";
        size_t used = 0;
        for (int i = 0; i < k->n_params && used < sizeof names; i++) {
            int w = snprintf(names + used, sizeof names - used, "%s%s %s", i ? ", " : "",
                             kf_kparam_kind_name(k->params[i].kind), k->params[i].name);
            if (w > 0) used += (size_t)w;
        }
        return kf_fail(err, KF_E_INVALID, "%s: %d arguments given but kernel '%s' declares %d "
                       "params (%s)", where, s->n_args, k->name, k->n_params, names);
    }
    for (int i = 0; i < s->n_args; i++) {
        const kf_karg *a = &s->args[i];
        const kf_kparam *q = &k->params[i];
        if (a->kind != q->kind)
            return kf_fail(err, KF_E_INVALID, "%s: argument %d (%s) is %s but the kernel "
                           "declares %s", where, i, q->name, kf_kparam_kind_name(a->kind),
                           kf_kparam_kind_name(q->kind));
        if (a->kind == KF_KP_PTR && !kf_buf_ok(p, a->buf))
            return kf_fail(err, KF_E_INVALID, "%s: argument %d (%s) refers to buffer index %d, "
                           "but there are %d buffers", where, i, q->name, a->buf, p->n_bufs);
        if (a->kind == KF_KP_I32 && (a->i < INT32_MIN || a->i > INT32_MAX))
            return kf_fail(err, KF_E_INVALID, "%s: argument %d (%s) = %lld does not fit in i32",
                           where, i, q->name, (long long)a->i);
    }
    for (int d = 0; d < 3; d++) {
        if (s->grid[d] < 1 || s->block[d] < 1)
            return kf_fail(err, KF_E_INVALID, "%s: grid and block sizes must be >= 1 (grid[%d] = "
                           "%lld, block[%d] = %lld)", where, d, (long long)s->grid[d], d,
                           (long long)s->block[d]);
    }
    if (s->shared_bytes < 0)
        return kf_fail(err, KF_E_INVALID, "%s: shared_bytes is negative", where);
    return 0;
}

/* One gemm operand: stored rows x cols with leading dimension ld, batch stride stride. */
static int kf_check_operand(const kf_program *p, const kf_step *s, const char *where,
                            const char *nm, int buf, int64_t rows, int64_t cols, int64_t ld,
                            int64_t stride, kf_err *err) {
    if (!kf_buf_ok(p, buf))
        return kf_fail(err, KF_E_INVALID, "%s: %s refers to buffer index %d, but there are %d "
                       "buffers", where, nm, buf, p->n_bufs);
    const kf_pbuf *b = &p->bufs[buf];
    if (b->desc.dtype != KF_F32)
        return kf_fail(err, KF_E_INVALID, "%s: %s buffer '%s' is %s; gemm needs f32", where, nm,
                       b->name, kf_dtype_name(b->desc.dtype));
    if (ld < cols)
        return kf_fail(err, KF_E_INVALID, "%s: ld%s = %lld is less than the %lld columns of the "
                       "stored %s", where, nm, (long long)ld, (long long)cols, nm);
    if (stride < 0)
        return kf_fail(err, KF_E_INVALID, "%s: stride_%s is negative", where, nm);
    int64_t last = kf_last_elem(s->batch, stride, rows, ld, cols);
    int64_t numel = kf_tdesc_numel(&b->desc);
    if (last < 0 || last >= numel)
        return kf_fail(err, KF_E_INVALID, "%s: %s reaches element %lld of buffer '%s', which has "
                       "%lld elements ((batch-1)*stride_%s + (rows-1)*ld%s + cols-1 = %lld*%lld + "
                       "%lld*%lld + %lld)", where, nm, (long long)last, b->name,
                       (long long)numel, nm, nm, (long long)(s->batch - 1), (long long)stride,
                       (long long)(rows - 1), (long long)ld, (long long)(cols - 1));
    return 0;
}

static int kf_check_gemm(const kf_program *p, const kf_step *s, int si, kf_err *err) {
    char where[64];
    snprintf(where, sizeof where, "step %d (gemm)", si);
    if (s->m < 1 || s->n < 1 || s->k < 1)
        return kf_fail(err, KF_E_INVALID, "%s: m, n and k must be >= 1 (m=%lld n=%lld k=%lld)",
                       where, (long long)s->m, (long long)s->n, (long long)s->k);
    if (s->batch < 1)
        return kf_fail(err, KF_E_INVALID, "%s: batch must be >= 1 (got %lld)", where,
                       (long long)s->batch);
    /* Stored shapes: A is m x k (k x m when trans_a), B is k x n (n x k when trans_b). */
    int rc = kf_check_operand(p, s, where, "a", s->a, s->trans_a ? s->k : s->m,
                              s->trans_a ? s->m : s->k, s->lda, s->stride_a, err);
    if (rc == 0)
        rc = kf_check_operand(p, s, where, "b", s->b, s->trans_b ? s->n : s->k,
                              s->trans_b ? s->k : s->n, s->ldb, s->stride_b, err);
    if (rc == 0) rc = kf_check_operand(p, s, where, "c", s->c, s->m, s->n, s->ldc, s->stride_c, err);
    if (rc != 0) return rc;
    if (s->c == s->a || s->c == s->b)
        return kf_fail(err, KF_E_INVALID, "%s: c ('%s') may not be the same buffer as a or b",
                       where, p->bufs[s->c].name);
    if (s->batch > 1 && s->stride_c == 0)
        return kf_fail(err, KF_E_INVALID, "%s: batch %lld with stride_c 0 would write every "
                       "batch to the same C", where, (long long)s->batch);
    return kf_check_writable(p, s->c, where, "c", err);
}

static int kf_check_copy(const kf_program *p, const kf_step *s, int si, kf_err *err) {
    char where[64];
    snprintf(where, sizeof where, "step %d (copy)", si);
    if (!kf_buf_ok(p, s->src) || !kf_buf_ok(p, s->dst))
        return kf_fail(err, KF_E_INVALID, "%s: src or dst does not name a buffer", where);
    const kf_pbuf *src = &p->bufs[s->src], *dst = &p->bufs[s->dst];
    if (s->bytes < 0 || s->src_offset < 0 || s->dst_offset < 0)
        return kf_fail(err, KF_E_INVALID, "%s: bytes and offsets must be >= 0", where);
    if (s->src_offset > (int64_t)src->nbytes || s->bytes > (int64_t)src->nbytes - s->src_offset)
        return kf_fail(err, KF_E_INVALID, "%s: reads bytes %lld..%lld of '%s', which has %zu",
                       where, (long long)s->src_offset, (long long)(s->src_offset + s->bytes),
                       src->name, src->nbytes);
    if (s->dst_offset > (int64_t)dst->nbytes || s->bytes > (int64_t)dst->nbytes - s->dst_offset)
        return kf_fail(err, KF_E_INVALID, "%s: writes bytes %lld..%lld of '%s', which has %zu",
                       where, (long long)s->dst_offset, (long long)(s->dst_offset + s->bytes),
                       dst->name, dst->nbytes);
    if (s->src == s->dst && s->bytes > 0 && s->src_offset < s->dst_offset + s->bytes &&
        s->dst_offset < s->src_offset + s->bytes)
        return kf_fail(err, KF_E_INVALID, "%s: source and destination ranges of '%s' overlap",
                       where, src->name);
    return kf_check_writable(p, s->dst, where, "dst", err);
}

static int kf_check_fill(const kf_program *p, const kf_step *s, int si, kf_err *err) {
    char where[64];
    snprintf(where, sizeof where, "step %d (fill)", si);
    if (!kf_buf_ok(p, s->dst))
        return kf_fail(err, KF_E_INVALID, "%s: dst does not name a buffer", where);
    return kf_check_writable(p, s->dst, where, "dst", err);
}

/* One conv tensor: numel elements from element offset off of an f32 buffer. */
static int kf_check_conv_tensor(const kf_program *p, const char *where, const char *nm, int buf,
                                int64_t off, int64_t numel, kf_err *err) {
    if (!kf_buf_ok(p, buf))
        return kf_fail(err, KF_E_INVALID, "%s: %s refers to buffer index %d, but there are %d "
                       "buffers", where, nm, buf, p->n_bufs);
    const kf_pbuf *b = &p->bufs[buf];
    if (b->desc.dtype != KF_F32)
        return kf_fail(err, KF_E_INVALID, "%s: %s buffer '%s' is %s; conv needs f32", where, nm,
                       b->name, kf_dtype_name(b->desc.dtype));
    int64_t have = kf_tdesc_numel(&b->desc);
    if (off < 0 || numel < 0 || off > have || numel > have - off)
        return kf_fail(err, KF_E_INVALID, "%s: %s needs elements %lld..%lld of buffer '%s', which "
                       "has %lld elements", where, nm, (long long)off, (long long)(off + numel),
                       b->name, (long long)have);
    return 0;
}

/* a * b with overflow reported as -1 (inputs are >= 0). */
static int64_t kf_mul_nn(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return -1;
    return r;
}

int kf_program_check_conv(const kf_program *p, const kf_step *s, int si, kf_err *err) {
    const kf_conv_step *c = &s->conv;
    char where[64];
    snprintf(where, sizeof where, "step %d (conv)", si);
    if (c->nsd < 1 || c->nsd > 3)
        return kf_fail(err, KF_E_INVALID, "%s: %d spatial dims (1 to 3 are supported)", where, c->nsd);
    if (c->n < 1 || c->c_in < 1 || c->c_out < 1 || c->groups < 1)
        return kf_fail(err, KF_E_INVALID, "%s: n, c_in, c_out and groups must be >= 1 (n=%lld c_in=%lld "
                       "c_out=%lld groups=%lld)", where, (long long)c->n, (long long)c->c_in,
                       (long long)c->c_out, (long long)c->groups);
    if (c->c_in % c->groups || c->c_out % c->groups)
        return kf_fail(err, KF_E_INVALID, "%s: groups %lld does not divide c_in %lld and c_out %lld", where,
                       (long long)c->groups, (long long)c->c_in, (long long)c->c_out);
    int64_t in_sp = 1, out_sp = 1, taps = 1;
    for (int j = 0; j < c->nsd; j++) {
        if (c->in[j] < 1 || c->kernel[j] < 1 || c->stride[j] < 1 || c->dilation[j] < 1 ||
            c->padding[j] < 0 || c->output_padding[j] < 0)
            return kf_fail(err, KF_E_INVALID, "%s: dim %d: in and kernel must be >= 1, stride and "
                           "dilation >= 1, padding and output_padding >= 0", where, j);
        if (!c->transposed && c->output_padding[j] != 0)
            return kf_fail(err, KF_E_INVALID, "%s: output_padding is only for transposed convolutions",
                           where);
        if (c->transposed && c->output_padding[j] >= c->stride[j] &&
            c->output_padding[j] >= c->dilation[j])
            return kf_fail(err, KF_E_INVALID, "%s: dim %d: output_padding %lld must be smaller than "
                           "stride or dilation", where, j, (long long)c->output_padding[j]);
        int64_t o = kf_conv_step_out(c, j);
        if (o < 1)
            return kf_fail(err, KF_E_INVALID, "%s: dim %d: the output would be empty (in %lld, kernel "
                           "%lld, padding %lld, dilation %lld)", where, j, (long long)c->in[j],
                           (long long)c->kernel[j], (long long)c->padding[j], (long long)c->dilation[j]);
        in_sp = kf_mul_nn(in_sp, c->in[j]);
        out_sp = kf_mul_nn(out_sp, o);
        taps = kf_mul_nn(taps, c->kernel[j]);
    }
    int64_t xn = kf_mul_nn(kf_mul_nn(c->n, c->c_in), in_sp);
    int64_t yn = kf_mul_nn(kf_mul_nn(c->n, c->c_out), out_sp);
    int64_t wn = kf_mul_nn(kf_mul_nn(c->c_in, c->c_out / c->groups), taps);
    if (xn < 0 || yn < 0 || wn < 0) return kf_fail(err, KF_E_INVALID, "%s: sizes overflow", where);
    if (!kf_buf_ok(p, c->x) || !kf_buf_ok(p, c->w) || !kf_buf_ok(p, c->y) || (c->bias >= 0 && !kf_buf_ok(p, c->bias)))
        return kf_fail(err, KF_E_INVALID, "%s: x, w, y or bias does not name a buffer", where);
    if (c->y == c->x || c->y == c->w || c->y == c->bias)
        return kf_fail(err, KF_E_INVALID, "%s: y ('%s') may not be the same buffer as x, w or bias",
                       where, p->bufs[c->y].name);
    int rc = kf_check_writable(p, c->y, where, "y", err);
    if (rc == 0) rc = kf_check_conv_tensor(p, where, "x", c->x, c->x_offset, xn, err);
    if (rc == 0) rc = kf_check_conv_tensor(p, where, "w", c->w, c->w_offset, wn, err);
    if (rc == 0) rc = kf_check_conv_tensor(p, where, "y", c->y, c->y_offset, yn, err);
    if (rc == 0 && c->bias >= 0) rc = kf_check_conv_tensor(p, where, "bias", c->bias, c->bias_offset, c->c_out, err);
    return rc;
}

/* Every output buffer must be something a step can write. */
static int kf_check_outputs_written(const kf_program *p, kf_err *err) {
    for (int i = 0; i < p->n_bufs; i++) {
        if (p->bufs[i].role != KF_BUF_OUTPUT || p->bufs[i].nbytes == 0) continue;
        int written = 0;
        for (int j = 0; j < p->n_steps && !written; j++) {
            const kf_step *s = &p->steps[j];
            switch (s->kind) {
            case KF_STEP_LAUNCH:
                for (int a = 0; a < s->n_args; a++)
                    if (s->args[a].kind == KF_KP_PTR && s->args[a].buf == i) written = 1;
                break;
            case KF_STEP_GEMM: written = s->c == i; break;
            case KF_STEP_COPY: written = s->dst == i && s->bytes > 0; break;
            case KF_STEP_FILL: written = s->dst == i; break;
            case KF_STEP_CONV: written = s->conv.y == i; break;
            }
        }
        if (!written)
            return kf_fail(err, KF_E_INVALID, "buffer '%s' (output %d) is never written by any "
                           "step", p->bufs[i].name, p->bufs[i].index);
    }
    return 0;
}

static int kf_check_graph(const kf_program *p, const kf_graph *g, kf_err *err) {
    int n_in = 0, n_out = 0;
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_pbuf *b = &p->bufs[i];
        const kf_value *v = NULL;
        char what[64];
        if (b->role == KF_BUF_INPUT) {
            n_in++;
            if (b->index < g->n_inputs) v = &g->values[g->inputs[b->index]];
            snprintf(what, sizeof what, "graph input %d", b->index);
        } else if (b->role == KF_BUF_OUTPUT) {
            n_out++;
            if (b->index < g->n_outputs) v = &g->values[g->outputs[b->index]];
            snprintf(what, sizeof what, "graph output %d", b->index);
        } else if (b->role == KF_BUF_PARAM) {
            int vi = kf_graph_find(g, b->param);
            if (vi < 0 || g->values[vi].kind != KF_VAL_PARAM)
                return kf_fail(err, KF_E_INVALID, "buffer '%s' (param) names '%s', which is not "
                               "a param of the graph", b->name, b->param);
            for (int k = 0; k < i; k++)
                if (p->bufs[k].role == KF_BUF_PARAM && strcmp(p->bufs[k].param, b->param) == 0)
                    return kf_fail(err, KF_E_INVALID, "buffers '%s' and '%s' both hold param '%s'",
                                   p->bufs[k].name, b->name, b->param);
            v = &g->values[vi];
            snprintf(what, sizeof what, "param '%s'", b->param);
        } else {
            continue;
        }
        if (!v)
            return kf_fail(err, KF_E_INVALID, "buffer '%s' is %s, but the graph has %d %ss",
                           b->name, what, b->role == KF_BUF_INPUT ? g->n_inputs : g->n_outputs,
                           kf_buf_role_name(b->role));
        char bs[96], vs[96];
        if (v->desc.dtype != b->desc.dtype || kf_tdesc_numel(&v->desc) != kf_tdesc_numel(&b->desc))
            return kf_fail(err, KF_E_INVALID, "buffer '%s' is %s but %s ('%s') is %s", b->name,
                           kf_tdesc_format(&b->desc, bs, sizeof bs), what, v->name,
                           kf_tdesc_format(&v->desc, vs, sizeof vs));
    }
    if (n_in != g->n_inputs)
        return kf_fail(err, KF_E_INVALID, "the program has %d input buffers but the graph has %d "
                       "inputs", n_in, g->n_inputs);
    if (n_out != g->n_outputs)
        return kf_fail(err, KF_E_INVALID, "the program has %d output buffers but the graph has %d "
                       "outputs", n_out, g->n_outputs);
    return 0;
}

int kf_program_validate(const kf_program *p, const kf_graph *g, kf_err *err) {
    if (!p->target || !p->target[0]) return kf_fail(err, KF_E_INVALID, "the program names no target");
    int rc = kf_check_kernels(p, err);
    if (rc == 0) rc = kf_check_bufs(p, err);
    for (int i = 0; rc == 0 && i < p->n_steps; i++) {
        const kf_step *s = &p->steps[i];
        switch (s->kind) {
        case KF_STEP_LAUNCH: rc = kf_check_launch(p, s, i, err); break;
        case KF_STEP_GEMM: rc = kf_check_gemm(p, s, i, err); break;
        case KF_STEP_COPY: rc = kf_check_copy(p, s, i, err); break;
        case KF_STEP_FILL: rc = kf_check_fill(p, s, i, err); break;
        case KF_STEP_CONV: rc = kf_program_check_conv(p, s, i, err); break;
        default: rc = kf_fail(err, KF_E_INVALID, "step %d has an unknown kind %d", i, (int)s->kind);
        }
    }
    if (rc == 0) rc = kf_check_outputs_written(p, err);
    if (rc == 0 && g) rc = kf_check_graph(p, g, err);
    return rc;
}
