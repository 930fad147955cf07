/* lower_view.c: views and data movement. Views that keep the row-major order of the
 * elements (view, reshape, squeeze, unsqueeze, flatten, clone, ...) alias their input; every
 * other view is materialised contiguous by a copy kernel: affine ones (permute, transpose, t,
 * expand, slice, select, narrow, diagonal, flip, split pieces, unbind) through one strided
 * gather, and cat, stack, repeat, roll, pixel_shuffle, tril/triu, constant_pad_nd by their own
 * index arithmetic. */
#include <string.h>
#include "agents/lower.h"

static int in_value(const kf_lw *w) {
    int t = kf_lw_arg_tensor(w->n, "self", 0);
    if (t < 0) t = kf_lw_arg_tensor(w->n, "input", 0);
    return t;
}

/* out[slot][i] = in[off + sum(coord_j(i) * istr[j])] over the output's shape. */
static void affine_copy(kf_lw *w, int slot, int in, const int64_t *istr, int64_t off) {
    if (!kf_lw_out_live(w, slot)) return;
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, slot));
    int i;
    kir_stmt *loop = kf_lw_loop(w, NULL, "i", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &i);
    kir_expr *flat = kir_var(w->k, i);
    kir_expr *coords[KF_MAX_DIMS];
    kf_lw_unravel(w, flat, od->shape, od->ndim, coords);
    kir_expr *src = kf_lw_dot(w, coords, istr, od->ndim, off);
    kf_lw_put(w, loop, slot, kir_var(w->k, i), kf_lw_load(w, in, src));
}

static void in_strides(const kf_lw *w, int in, int64_t *s) {
    const kf_tdesc *d = kf_lw_desc(w, in);
    kf_lw_strides(d->shape, d->ndim, s);
}

/* 1 when the permutation keeps every dim of size > 1 in order (no data moves). */
static int perm_is_identity(const kf_tdesc *in, const int64_t *perm, int nd) {
    int last = -1;
    for (int j = 0; j < nd; j++) {
        int d = kf_lw_wrap_dim(perm[j], in->ndim);
        if (in->shape[d] == 1) continue;
        if (d < last) return 0;
        last = d;
    }
    return 1;
}

static int get_perm(const kf_graph *g, const kf_node *n, int64_t *perm) {
    char base[96];
    kf_lop_base(n->op, base, sizeof base);
    int in = kf_lw_arg_tensor(n, "self", 0);
    if (in < 0) in = kf_lw_arg_tensor(n, "input", 0);
    if (in < 0) return -1;
    int nd = g->values[in].desc.ndim;
    if (strcmp(base, "permute") == 0 || strcmp(base, "permute_copy") == 0) {
        int c = kf_lw_arg_ints(n, "dims", 1, perm, KF_MAX_DIMS);
        if (c != nd) return -1;
        for (int j = 0; j < nd; j++) perm[j] = kf_lw_wrap_dim(perm[j], nd);
        return nd;
    }
    for (int j = 0; j < nd; j++) perm[j] = j;
    if (nd < 2) return nd;
    int64_t a, b;
    if (strcmp(base, "t") == 0 || strcmp(base, "t_copy") == 0) {
        a = 0; b = 1;
    } else if (strcmp(base, "numpy_T") == 0) {
        for (int j = 0; j < nd; j++) perm[j] = nd - 1 - j;
        return nd;
    } else if (strcmp(base, "mT") == 0 || strcmp(base, "adjoint") == 0) {
        a = nd - 2; b = nd - 1;
    } else {
        a = kf_lw_wrap_dim(kf_lw_arg_int(n, "dim0", 1, 0), nd);
        b = kf_lw_wrap_dim(kf_lw_arg_int(n, "dim1", 2, 1), nd);
        if (!kf_lw_arg(n, "dim0", 1)) {
            a = kf_lw_wrap_dim(kf_lw_arg_int(n, "axis0", -1, 0), nd);
            b = kf_lw_wrap_dim(kf_lw_arg_int(n, "axis1", -1, 1), nd);
        }
    }
    perm[a] = b;
    perm[b] = a;
    return nd;
}

static int alias_permute(const kf_graph *g, const kf_node *n) {
    int64_t perm[KF_MAX_DIMS];
    int in = kf_lw_arg_tensor(n, "self", 0);
    int nd = get_perm(g, n, perm);
    return nd >= 0 && in >= 0 && perm_is_identity(&g->values[in].desc, perm, nd);
}

static int build_permute(kf_lw *w, kf_err *err) {
    int64_t perm[KF_MAX_DIMS], s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    int in = in_value(w);
    int nd = get_perm(w->g, w->n, perm);
    if (in < 0 || nd < 0) return kf_lw_unsupported(err, w->n, "bad permutation");
    in_strides(w, in, s);
    for (int j = 0; j < nd; j++) istr[j] = s[perm[j]];
    affine_copy(w, 0, in, istr, 0);
    return 0;
}

/* Same element count and dtype: the op is the identity on the data. */
static int alias_same_numel(const kf_graph *g, const kf_node *n) {
    int in = kf_lw_arg_tensor(n, "self", 0);
    if (in < 0) in = kf_lw_arg_tensor(n, "input", 0);
    if (in < 0 || n->n_outs < 1 || n->outs[0] < 0) return 0;
    const kf_tdesc *a = &g->values[in].desc, *b = &g->values[n->outs[0]].desc;
    return a->dtype == b->dtype && kf_tdesc_numel(a) == kf_tdesc_numel(b);
}

static int build_expand(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int64_t s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    in_strides(w, in, s);
    for (int j = 0; j < od->ndim; j++) {
        int ij = j - (od->ndim - id->ndim);
        istr[j] = (ij < 0 || id->shape[ij] == 1) ? 0 : s[ij];
    }
    affine_copy(w, 0, in, istr, 0);
    return 0;
}

static int64_t norm_index(int64_t v, int64_t size, int clamp) {
    if (v < 0) v += size;
    if (clamp) {
        if (v < 0) v = 0;
        if (v > size) v = size;
    }
    return v;
}

static int build_slice(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 1, 0), id->ndim);
    int64_t size = id->ndim ? id->shape[dim] : 1;
    int64_t start, step = 1;
    if (strcmp(w->op, "narrow") == 0 || strcmp(w->op, "narrow_copy") == 0) {
        start = norm_index(kf_lw_arg_int(w->n, "start", 2, 0), size, 1);
    } else {
        start = kf_lw_arg_is_none(w->n, "start", 2) ? 0 : norm_index(kf_lw_arg_int(w->n, "start", 2, 0), size, 1);
        step = kf_lw_arg_int(w->n, "step", 4, 1);
    }
    if (step < 1) return kf_lw_unsupported(err, w->n, "slice step < 1");
    int64_t s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    in_strides(w, in, s);
    for (int j = 0; j < id->ndim; j++) istr[j] = s[j];
    istr[dim] = s[dim] * step;
    affine_copy(w, 0, in, istr, start * s[dim]);
    return 0;
}

static int build_select(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 1, 0), id->ndim);
    int64_t idx = norm_index(kf_lw_arg_int(w->n, "index", 2, 0), id->shape[dim], 0);
    int64_t s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    in_strides(w, in, s);
    int c = 0;
    for (int j = 0; j < id->ndim; j++)
        if (j != dim) istr[c++] = s[j];
    affine_copy(w, 0, in, istr, idx * s[dim]);
    return 0;
}

static int build_unbind(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 1, 0), id->ndim);
    int64_t s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    in_strides(w, in, s);
    int c = 0;
    for (int j = 0; j < id->ndim; j++)
        if (j != dim) istr[c++] = s[j];
    for (int o = 0; o < w->n->n_outs; o++) affine_copy(w, o, in, istr, o * s[dim]);
    return 0;
}

/* split, split_with_sizes, unsafe_split*, chunk, tensor_split (sections): pieces along dim. */
static int build_split(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 2, 0), id->ndim);
    int64_t size = id->ndim ? id->shape[dim] : 1;
    int64_t sizes[64];
    int np = w->n->n_outs;
    if (np > 64) return kf_lw_unsupported(err, w->n, "more than 64 pieces");
    if (strstr(w->op, "with_sizes")) {
        if (kf_lw_arg_ints(w->n, "split_sizes", 1, sizes, 64) < np)
            return kf_lw_unsupported(err, w->n, "split sizes");
    } else {
        int64_t piece;
        if (strcmp(w->op, "chunk") == 0) {
            int64_t chunks = kf_lw_arg_int(w->n, "chunks", 1, 1);
            piece = chunks > 0 ? (size + chunks - 1) / chunks : size;
        } else {
            piece = kf_lw_arg_int(w->n, "split_size", 1, size);
        }
        for (int o = 0; o < np; o++) {
            int64_t left = size - o * piece;
            sizes[o] = left < piece ? (left > 0 ? left : 0) : piece;
        }
    }
    int64_t s[KF_MAX_DIMS];
    in_strides(w, in, s);
    int64_t off = 0;
    for (int o = 0; o < np; o++) {
        affine_copy(w, o, in, s, off * s[dim]);
        off += sizes[o];
    }
    return 0;
}

static int build_diagonal(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int64_t off = kf_lw_arg_int(w->n, "offset", 1, 0);
    int d1 = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim1", 2, 0), id->ndim);
    int d2 = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim2", 3, 1), id->ndim);
    int64_t s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    in_strides(w, in, s);
    int c = 0;
    for (int j = 0; j < id->ndim; j++)
        if (j != d1 && j != d2) istr[c++] = s[j];
    istr[c] = s[d1] + s[d2];
    int64_t base = off >= 0 ? off * s[d2] : -off * s[d1];
    affine_copy(w, 0, in, istr, base);
    return 0;
}

static int build_flip(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int64_t dims[KF_MAX_DIMS], s[KF_MAX_DIMS], istr[KF_MAX_DIMS];
    int nd = kf_lw_arg_ints(w->n, "dims", 1, dims, KF_MAX_DIMS);
    in_strides(w, in, s);
    int flip[KF_MAX_DIMS] = {0};
    for (int j = 0; j < nd; j++) flip[kf_lw_wrap_dim(dims[j], id->ndim)] = 1;
    int64_t off = 0;
    for (int j = 0; j < id->ndim; j++) {
        istr[j] = flip[j] ? -s[j] : s[j];
        if (flip[j]) off += (id->shape[j] - 1) * s[j];
    }
    affine_copy(w, 0, in, istr, off);
    return 0;
}

/* cat / stack: each input copied into its place along dim. */
static int build_cat(kf_lw *w, kf_err *err) {
    const kf_arg *ts = kf_lw_arg(w->n, "tensors", 0);
    if (!ts || ts->kind != KF_ARG_LIST) return kf_lw_unsupported(err, w->n, "no tensor list");
    if (!kf_lw_out_live(w, 0)) return 0;
    int stack = strcmp(w->op, "stack") == 0;
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 1, 0), od->ndim);
    int64_t ostr[KF_MAX_DIMS];
    kf_lw_strides(od->shape, od->ndim, ostr);
    int64_t off = 0;
    for (int t = 0; t < ts->n_items; t++) {
        if (ts->items[t].kind != KF_ARG_TENSOR) return kf_lw_unsupported(err, w->n, "list item is not a tensor");
        int in = ts->items[t].tensor;
        const kf_tdesc *id = kf_lw_desc(w, in);
        int64_t numel = kf_tdesc_numel(id);
        /* legacy cat skips empty 1-D inputs */
        if (numel == 0) continue;
        /* the input seen in the output's dims */
        int64_t ishape[KF_MAX_DIMS], istr_out[KF_MAX_DIMS];
        int c = 0;
        for (int j = 0; j < od->ndim; j++) {
            if (stack && j == dim) ishape[j] = 1;
            else ishape[j] = id->shape[c++];
            istr_out[j] = ostr[j];
        }
        int i;
        kir_stmt *loop = kf_lw_loop(w, NULL, "i", numel, KIR_LOOP_PARALLEL, &i);
        kir_expr *coords[KF_MAX_DIMS];
        kf_lw_unravel(w, kir_var(w->k, i), ishape, od->ndim, coords);
        kir_expr *dst = kf_lw_dot(w, coords, istr_out, od->ndim, off * ostr[dim]);
        kf_lw_put(w, loop, 0, dst, kf_lw_load(w, in, kir_var(w->k, i)));
        off += ishape[dim];
    }
    return 0;
}

/* Output loop with coordinates, for the non-affine gathers below. */
static kir_stmt *coord_loop(kf_lw *w, const kf_tdesc *od, int *i, kir_expr **coords) {
    kir_stmt *loop = kf_lw_loop(w, NULL, "i", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, i);
    kf_lw_unravel(w, kir_var(w->k, *i), od->shape, od->ndim, coords);
    return loop;
}

/* diag: a 1-D input becomes a matrix with it on diagonal d; a 2-D input gives diagonal d */
static int build_diag(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *id = kf_lw_desc(w, in);
    int64_t d = kf_lw_arg_int(w->n, "diagonal", 1, 0);
    if (id->ndim == 2) {
        int64_t istr[1] = {id->shape[1] + 1};
        affine_copy(w, 0, in, istr, d >= 0 ? d : -d * id->shape[1]);
        return 0;
    }
    if (id->ndim != 1) return kf_lw_unsupported(err, w->n, "input must be 1-D or 2-D");
    if (!kf_lw_out_live(w, 0)) return 0;
    kir_kernel *k = w->k;
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int i;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, c);
    kir_expr *on = kir_bin(k, KIR_EQ, kir_bin(k, KIR_SUB, kf_lw_dup(w, c[1]), kf_lw_dup(w, c[0])), kf_lw_i(w, d));
    kir_stmt *iff = kir_if(k, on);
    kir_append(k, loop, iff);
    kir_expr *x = kf_lw_load(w, in, kf_lw_dup(w, c[d >= 0 ? 0 : 1]));
    kf_lw_put(w, iff, 0, kir_var(k, i), x);
    kir_append_else(k, iff, kf_lw_store(w, 0, kir_var(k, i), kf_lw_const(k, 0, x)));
    return 0;
}

static int build_repeat(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *id = kf_lw_desc(w, in), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int64_t s[KF_MAX_DIMS];
    in_strides(w, in, s);
    int i;
    kir_expr *coords[KF_MAX_DIMS], *ic[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, coords);
    for (int j = 0; j < id->ndim; j++) {
        int oj = j + (od->ndim - id->ndim);
        ic[j] = id->shape[j] == od->shape[oj] ? coords[oj]
              : kir_bin(w->k, KIR_MOD, kf_lw_dup(w, coords[oj]), kf_lw_i(w, id->shape[j]));
    }
    kf_lw_put(w, loop, 0, kir_var(w->k, i), kf_lw_load(w, in, kf_lw_dot(w, ic, s, id->ndim, 0)));
    return 0;
}

static int build_roll(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int64_t shifts[KF_MAX_DIMS], dims[KF_MAX_DIMS], s[KF_MAX_DIMS];
    int ns = kf_lw_arg_ints(w->n, "shifts", 1, shifts, KF_MAX_DIMS);
    int nd = kf_lw_arg_ints(w->n, "dims", 2, dims, KF_MAX_DIMS);
    if (ns < 1 || nd != ns) return kf_lw_unsupported(err, w->n, "roll without dims");
    in_strides(w, in, s);
    int i;
    kir_expr *coords[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, coords);
    for (int j = 0; j < nd; j++) {
        int d = kf_lw_wrap_dim(dims[j], od->ndim);
        int64_t size = od->shape[d];
        int64_t sh = ((shifts[j] % size) + size) % size;
        /* source = (c - shift) mod size = (c + size - shift) % size */
        coords[d] = kir_bin(w->k, KIR_MOD, kir_add(w->k, kf_lw_dup(w, coords[d]), kf_lw_i(w, size - sh)),
                            kf_lw_i(w, size));
    }
    kf_lw_put(w, loop, 0, kir_var(w->k, i), kf_lw_load(w, in, kf_lw_dot(w, coords, s, od->ndim, 0)));
    return 0;
}

static int build_pixel_shuffle(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *id = kf_lw_desc(w, in), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int unshuffle = strcmp(w->op, "pixel_unshuffle") == 0;
    int64_t r = kf_lw_arg_int(w->n, unshuffle ? "downscale_factor" : "upscale_factor", 1, 1);
    if (od->ndim < 3 || id->ndim != od->ndim || r < 1) return kf_lw_unsupported(err, w->n, "shape");
    int nd = od->ndim;
    int64_t s[KF_MAX_DIMS];
    in_strides(w, in, s);
    int i;
    kir_expr *c[KF_MAX_DIMS], *ic[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, c);
    for (int j = 0; j < nd - 3; j++) ic[j] = c[j];
    kir_kernel *k = w->k;
    kir_expr *R = kf_lw_i(w, r);
    if (!unshuffle) {
        /* out[c][h*r+a][w*r+b] = in[c*r*r + a*r + b][h][w] */
        kir_expr *ch = c[nd - 3], *h = c[nd - 2], *x = c[nd - 1];
        kir_expr *a = kir_bin(k, KIR_MOD, kf_lw_dup(w, h), kf_lw_dup(w, R));
        kir_expr *b = kir_bin(k, KIR_MOD, kf_lw_dup(w, x), kf_lw_dup(w, R));
        ic[nd - 3] = kir_add(k, kir_mul(k, kf_lw_dup(w, ch), kf_lw_i(w, r * r)),
                             kir_add(k, kir_mul(k, a, kf_lw_dup(w, R)), b));
        ic[nd - 2] = kir_bin(k, KIR_DIV, kf_lw_dup(w, h), kf_lw_dup(w, R));
        ic[nd - 1] = kir_bin(k, KIR_DIV, kf_lw_dup(w, x), kf_lw_dup(w, R));
    } else {
        /* out[c*r*r + a*r + b][h][w] = in[c][h*r+a][w*r+b] */
        kir_expr *ch = c[nd - 3], *h = c[nd - 2], *x = c[nd - 1];
        kir_expr *cc = kir_bin(k, KIR_DIV, kf_lw_dup(w, ch), kf_lw_i(w, r * r));
        kir_expr *rem = kir_bin(k, KIR_MOD, kf_lw_dup(w, ch), kf_lw_i(w, r * r));
        kir_expr *a = kir_bin(k, KIR_DIV, kf_lw_dup(w, rem), kf_lw_dup(w, R));
        kir_expr *b = kir_bin(k, KIR_MOD, rem, kf_lw_dup(w, R));
        ic[nd - 3] = cc;
        ic[nd - 2] = kir_add(k, kir_mul(k, kf_lw_dup(w, h), kf_lw_dup(w, R)), a);
        ic[nd - 1] = kir_add(k, kir_mul(k, kf_lw_dup(w, x), kf_lw_dup(w, R)), b);
    }
    kf_lw_put(w, loop, 0, kir_var(k, i), kf_lw_load(w, in, kf_lw_dot(w, ic, s, nd, 0)));
    return 0;
}

static int build_tri(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, 0));
    if (od->ndim < 2) return kf_lw_unsupported(err, w->n, "needs 2 dims");
    int64_t diag = kf_lw_arg_int(w->n, "diagonal", 1, 0);
    int lower = strcmp(w->op, "tril") == 0;
    int i;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, c);
    kir_kernel *k = w->k;
    /* keep when col - row <= diag (tril) or >= diag (triu) */
    kir_expr *d = kir_bin(k, KIR_SUB, kf_lw_dup(w, c[od->ndim - 1]), kf_lw_dup(w, c[od->ndim - 2]));
    kir_expr *keep = kir_bin(k, lower ? KIR_LE : KIR_GE, d, kf_lw_i(w, diag));
    kir_expr *x = kf_lw_load(w, in, kir_var(k, i));
    kf_lw_put(w, loop, 0, kir_var(k, i), kir_select(k, keep, x, kf_lw_const(k, 0, x)));
    return 0;
}

static int build_pad(kf_lw *w, kf_err *err) {
    int in = in_value(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *id = kf_lw_desc(w, in), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int64_t pad[2 * KF_MAX_DIMS], s[KF_MAX_DIMS], before[KF_MAX_DIMS] = {0};
    int np = kf_lw_arg_ints(w->n, "pad", 1, pad, 2 * KF_MAX_DIMS);
    if (np < 0 || np % 2 || np / 2 > id->ndim) return kf_lw_unsupported(err, w->n, "pad list");
    for (int p = 0; p < np / 2; p++) before[id->ndim - 1 - p] = pad[2 * p];
    double value = kf_lw_arg_num(w->n, "value", 2, 0.0);
    in_strides(w, in, s);
    int i;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, c);
    kir_kernel *k = w->k;
    kir_expr *inside = NULL, *ic[KF_MAX_DIMS];
    for (int j = 0; j < id->ndim; j++) {
        if (before[j] == 0 && id->shape[j] == od->shape[j]) {
            ic[j] = c[j];
            continue;
        }
        ic[j] = kir_bin(k, KIR_SUB, kf_lw_dup(w, c[j]), kf_lw_i(w, before[j]));
        kir_expr *ok = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, kf_lw_dup(w, ic[j]), kf_lw_i(w, 0)),
                               kir_bin(k, KIR_LT, kf_lw_dup(w, ic[j]), kf_lw_i(w, id->shape[j])));
        inside = inside ? kir_bin(k, KIR_AND, inside, ok) : ok;
    }
    kir_type t = kf_lw_type(w, in);
    kir_expr *fill = (t == KIR_T_F32 || t == KIR_T_F64) ? kir_flt(k, value, t) : kir_int(k, (int64_t)value);
    if (!inside) {
        kf_lw_put(w, loop, 0, kir_var(k, i), kf_lw_load(w, in, kf_lw_dot(w, ic, s, id->ndim, 0)));
        return 0;
    }
    kir_stmt *iff = kir_if(k, inside);
    kir_append(k, loop, iff);
    kf_lw_put(w, iff, 0, kir_var(k, i), kf_lw_load(w, in, kf_lw_dot(w, ic, s, id->ndim, 0)));
    kir_append_else(k, iff, kf_lw_store(w, 0, kir_var(k, i), fill));
    return 0;
}

/* slice_scatter / select_scatter: self with a slice (or one index) along dim replaced by src */
static int build_scatter_view(kf_lw *w, kf_err *err) {
    int in = in_value(w), src = kf_lw_arg_tensor(w->n, "src", 1);
    if (in < 0 || src < 0) return kf_lw_unsupported(err, w->n, "missing operands");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, 0)), *sd = kf_lw_desc(w, src);
    int select = strcmp(w->op, "select_scatter") == 0;
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 2, 0), od->ndim);
    int64_t size = od->ndim ? od->shape[dim] : 1, start, step = 1, end = size;
    if (select) {
        start = norm_index(kf_lw_arg_int(w->n, "index", 3, 0), size, 0);
        end = start + 1;
    } else {
        start = kf_lw_arg_is_none(w->n, "start", 3) ? 0 : norm_index(kf_lw_arg_int(w->n, "start", 3, 0), size, 1);
        if (!kf_lw_arg_is_none(w->n, "end", 4)) end = norm_index(kf_lw_arg_int(w->n, "end", 4, size), size, 1);
        step = kf_lw_arg_int(w->n, "step", 5, 1);
        if (step < 1) return kf_lw_unsupported(err, w->n, "step < 1");
    }
    kir_kernel *k = w->k;
    int i;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = coord_loop(w, od, &i, c);
    int d = kf_lw_local(w, loop, "d", KIR_T_I64, kf_lw_dup(w, c[dim]));
    kir_expr *rel = kir_bin(k, KIR_SUB, kir_var(k, d), kf_lw_i(w, start));
    kir_expr *inside = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, kir_var(k, d), kf_lw_i(w, start)),
                               kir_bin(k, KIR_LT, kir_var(k, d), kf_lw_i(w, end)));
    if (step > 1)
        inside = kir_bin(k, KIR_AND, inside, kir_bin(k, KIR_EQ, kir_bin(k, KIR_MOD, kf_lw_dup(w, rel), kf_lw_i(w, step)),
                                                     kf_lw_i(w, 0)));
    int64_t ss[KF_MAX_DIMS], sstr[KF_MAX_DIMS];
    kf_lw_strides(sd->shape, sd->ndim, ss);
    int n = 0;
    for (int j = 0; j < od->ndim; j++) {
        if (select && j == dim) continue;
        sstr[j] = ss[n++];
    }
    if (select) sstr[dim] = 0;
    else c[dim] = step > 1 ? kir_bin(k, KIR_DIV, rel, kf_lw_i(w, step)) : rel;
    kir_stmt *iff = kir_if(k, inside);
    kir_append(k, loop, iff);
    kf_lw_put(w, iff, 0, kir_var(k, i), kf_lw_load(w, src, kf_lw_dot(w, c, sstr, od->ndim, 0)));
    kir_append_else(k, iff, kf_lw_store(w, 0, kir_var(k, i), kf_lw_load(w, in, kir_var(k, i))));
    return 0;
}

static int alias_dropout(const kf_graph *g, const kf_node *n) {
    double p = kf_lw_arg_num(n, "p", 1, 0.0);
    const kf_arg *t = kf_lw_arg(n, "train", 2);
    int train = t && (t->kind == KF_ARG_BOOL || t->kind == KF_ARG_INT) ? (int)t->i : 1;
    if (t && t->kind == KF_ARG_NONE) train = 1;
    return p == 0.0 || !train;
}

static int build_dropout(kf_lw *w, kf_err *err) {
    return kf_lw_unsupported(err, w->n, "random dropout in training mode cannot be verified");
}

#define ALIAS(nm) {nm, KF_LOP_ALIAS, NULL, {NULL}, 0, 0, NULL, NULL}
#define KERN(nm, b, a) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, a}

const kf_lop kf_lops_view[] = {
    ALIAS("view"), ALIAS("_unsafe_view"), ALIAS("reshape"), ALIAS("_reshape_alias"),
    ALIAS("squeeze"), ALIAS("unsqueeze"), ALIAS("flatten"), ALIAS("unflatten"), ALIAS("alias"),
    ALIAS("detach"), ALIAS("clone"), ALIAS("contiguous"), ALIAS("lift_fresh_copy"),
    ALIAS("lift_fresh"), ALIAS("view_as"), ALIAS("reshape_as"), ALIAS("view_copy"),
    ALIAS("_reshape_copy"), ALIAS("squeeze_copy"), ALIAS("unsqueeze_copy"), ALIAS("alias_copy"),
    ALIAS("detach_copy"), ALIAS("_unsafe_view_copy"), ALIAS("ravel"), ALIAS("_reshape_alias_copy"),
    KERN("permute", build_permute, alias_permute), KERN("permute_copy", build_permute, alias_permute),
    KERN("transpose", build_permute, alias_permute), KERN("transpose_copy", build_permute, alias_permute),
    KERN("swapaxes", build_permute, alias_permute), KERN("swapdims", build_permute, alias_permute),
    KERN("t", build_permute, alias_permute), KERN("t_copy", build_permute, alias_permute),
    KERN("numpy_T", build_permute, alias_permute), KERN("mT", build_permute, alias_permute),
    KERN("adjoint", build_permute, alias_permute),
    KERN("expand", build_expand, alias_same_numel), KERN("expand_copy", build_expand, alias_same_numel),
    KERN("expand_as", build_expand, alias_same_numel), KERN("broadcast_to", build_expand, alias_same_numel),
    KERN("slice", build_slice, alias_same_numel), KERN("slice_copy", build_slice, alias_same_numel),
    KERN("narrow", build_slice, alias_same_numel), KERN("narrow_copy", build_slice, alias_same_numel),
    KERN("select", build_select, alias_same_numel), KERN("select_copy", build_select, alias_same_numel),
    KERN("unbind", build_unbind, NULL), KERN("unbind_copy", build_unbind, NULL),
    KERN("split", build_split, NULL), KERN("split_copy", build_split, NULL),
    KERN("unsafe_split", build_split, NULL), KERN("split_with_sizes", build_split, NULL),
    KERN("split_with_sizes_copy", build_split, NULL), KERN("unsafe_split_with_sizes", build_split, NULL),
    KERN("chunk", build_split, NULL), KERN("unsafe_chunk", build_split, NULL),
    KERN("diagonal", build_diagonal, NULL), KERN("diagonal_copy", build_diagonal, NULL),
    KERN("diag", build_diag, NULL), KERN("flip", build_flip, NULL), KERN("cat", build_cat, NULL), KERN("concat", build_cat, NULL),
    KERN("concatenate", build_cat, NULL), KERN("stack", build_cat, NULL),
    KERN("repeat", build_repeat, alias_same_numel), KERN("roll", build_roll, NULL),
    KERN("pixel_shuffle", build_pixel_shuffle, NULL), KERN("pixel_unshuffle", build_pixel_shuffle, NULL),
    KERN("tril", build_tri, NULL), KERN("triu", build_tri, NULL),
    KERN("constant_pad_nd", build_pad, NULL),
    KERN("slice_scatter", build_scatter_view, NULL), KERN("select_scatter", build_scatter_view, NULL),
    KERN("dropout", build_dropout, alias_dropout), KERN("feature_dropout", build_dropout, alias_dropout),
    KERN("alpha_dropout", build_dropout, alias_dropout),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
