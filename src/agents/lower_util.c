/* lower_util.c: helpers the lowering's builders share: value descriptors, loads and stores
 * through the kf_lw callbacks, constants and conversions, loops, and index arithmetic
 * (unravelling flat indices, broadcasting, strided dot products). */
#include <string.h>
#include "agents/lower.h"

const kf_tdesc *kf_lw_desc(const kf_lw *w, int value) { return &w->g->values[value].desc; }

int64_t kf_lw_numel(const kf_lw *w, int value) { return kf_tdesc_numel(kf_lw_desc(w, value)); }

int kf_lw_out(const kf_lw *w, int slot) {
    if (slot < 0 || slot >= w->n->n_outs) return -1;
    return w->n->outs[slot];
}

kir_type kf_lw_type(const kf_lw *w, int value) { return kir_type_of_dtype(kf_lw_desc(w, value)->dtype); }

kir_type kf_lw_acc_type(kir_type t) {
    return (t == KIR_T_F32 || t == KIR_T_F64) ? KIR_T_F64 : KIR_T_I64;
}

kir_expr *kf_lw_load(kf_lw *w, int value, kir_expr *idx) {
    if (w->load_hook) {
        kir_expr *e = w->load_hook(w, value, idx);
        if (e) return e;
    }
    int b = w->value_buf(w, value, 0);
    if (b < 0) return NULL;
    return kir_load(w->k, b, idx);
}

kir_expr *kf_lw_cvt(kir_kernel *k, kir_type t, kir_expr *e) {
    if (!e || e->type == t) return e;
    if (t == KIR_T_BOOL) {
        kir_expr *zero = (e->type == KIR_T_F32 || e->type == KIR_T_F64) ? kir_flt(k, 0.0, e->type)
                                                                        : kir_int(k, 0);
        return kir_bin(k, KIR_NE, e, zero);
    }
    return kir_cast(k, t, e);
}

int kf_lw_out_live(const kf_lw *w, int slot) {
    int v = kf_lw_out(w, slot);
    return v >= 0 && (!w->live || w->live[v]);
}

kir_stmt *kf_lw_store(kf_lw *w, int slot, kir_expr *idx, kir_expr *val) {
    if (!kf_lw_out_live(w, slot)) return NULL;
    int v = kf_lw_out(w, slot);
    kf_dtype dt = kf_lw_desc(w, v)->dtype;
    if (dt == KF_BOOL) val = kf_lw_cvt(w->k, KIR_T_BOOL, val);
    val = kf_lw_cvt(w->k, kir_type_of_dtype(dt), val);
    if (w->store_hook) return w->store_hook(w, slot, idx, val);
    int b = w->value_buf(w, v, 1);
    if (b < 0) return NULL;
    return kir_store(w->k, b, idx, val);
}

void kf_lw_put(kf_lw *w, kir_stmt *parent, int slot, kir_expr *idx, kir_expr *val) {
    if (!kf_lw_out_live(w, slot)) return;
    kir_append(w->k, parent, kf_lw_store(w, slot, idx, val));
}

kir_expr *kf_lw_i(kf_lw *w, int64_t v) { return kir_int(w->k, v); }

kir_expr *kf_lw_dup(kf_lw *w, const kir_expr *e) { return e ? kir_expr_clone(w->k, e) : NULL; }

kir_expr *kf_lw_const(kir_kernel *k, double v, const kir_expr *like) {
    if (like && (like->type == KIR_T_F32 || like->type == KIR_T_F64)) return kir_flt(k, v, like->type);
    if (!like) return kir_flt(k, v, KIR_T_F32);
    return kir_int(k, (int64_t)v);
}

int kf_lw_local(kf_lw *w, kir_stmt *parent, const char *hint, kir_type t, kir_expr *init) {
    int var = kir_add_var(w->k, hint, t);
    kir_append(w->k, parent ? parent : w->k->body, kir_decl(w->k, var, init));
    return var;
}

kir_expr *kf_lw_v(kf_lw *w, int var) { return kir_var(w->k, var); }

kir_stmt *kf_lw_loop(kf_lw *w, kir_stmt *parent, const char *hint, int64_t n, kir_loop_kind kind,
                     int *var) {
    int v = kir_add_var(w->k, hint, KIR_T_I64);
    kir_stmt *s = kir_for(w->k, v, kir_int(w->k, 0), kir_int(w->k, n), 1, kind);
    kir_append(w->k, parent ? parent : w->k->body, s);
    if (var) *var = v;
    return s;
}

void kf_lw_strides(const int64_t *shape, int nd, int64_t *strides) {
    int64_t s = 1;
    for (int j = nd - 1; j >= 0; j--) {
        strides[j] = s;
        s *= shape[j] > 0 ? shape[j] : 1;
    }
}

void kf_lw_unravel(kf_lw *w, const kir_expr *flat, const int64_t *shape, int nd, kir_expr **coords) {
    int64_t strides[KF_MAX_DIMS];
    kf_lw_strides(shape, nd, strides);
    int64_t outer = 1;  /* product of the sizes before dim j */
    for (int j = 0; j < nd; j++) {
        if (shape[j] == 1) {
            coords[j] = kir_int(w->k, 0);
            continue;
        }
        kir_expr *e = kf_lw_dup(w, flat);
        if (strides[j] > 1) e = kir_bin(w->k, KIR_DIV, e, kir_int(w->k, strides[j]));
        if (outer > 1) e = kir_bin(w->k, KIR_MOD, e, kir_int(w->k, shape[j]));
        coords[j] = e;
        outer *= shape[j];
    }
}

kir_expr *kf_lw_dot(kf_lw *w, kir_expr **coords, const int64_t *strides, int nd, int64_t offset) {
    kir_expr *sum = NULL;
    for (int j = 0; j < nd; j++) {
        if (!coords[j] || strides[j] == 0) continue;
        if (coords[j]->kind == KIR_E_CONST_I && coords[j]->ival == 0) continue;
        kir_expr *t = kf_lw_dup(w, coords[j]);
        if (strides[j] != 1) t = kir_mul(w->k, t, kir_int(w->k, strides[j]));
        sum = sum ? kir_add(w->k, sum, t) : t;
    }
    if (!sum) return kir_int(w->k, offset);
    if (offset) sum = kir_add(w->k, sum, kir_int(w->k, offset));
    return sum;
}

kir_expr *kf_lw_bcast_index(kf_lw *w, const kir_expr *flat, const int64_t *out_shape, int out_nd,
                            const kf_tdesc *in) {
    int64_t in_numel = kf_tdesc_numel(in), out_numel = 1;
    for (int j = 0; j < out_nd; j++) out_numel *= out_shape[j];
    if (in_numel == 1) return kir_int(w->k, 0);
    if (in_numel == out_numel) return kf_lw_dup(w, flat);
    /* Group the output dims (size-1 dims dropped) into runs where the input is either
     * broadcast or not; inside a run the flat offsets are contiguous. */
    int64_t gsize[KF_MAX_DIMS] = {0};
    int gb[KF_MAX_DIMS], ng = 0;
    for (int j = 0; j < out_nd; j++) {
        if (out_shape[j] == 1) continue;
        int ij = j - (out_nd - in->ndim);
        int b = (ij < 0 || in->shape[ij] == 1);
        if (ng > 0 && gb[ng - 1] == b) {
            gsize[ng - 1] *= out_shape[j];
        } else {
            gsize[ng] = out_shape[j];
            gb[ng] = b;
            ng++;
        }
    }
    kir_expr *coords[KF_MAX_DIMS];
    kf_lw_unravel(w, flat, gsize, ng, coords);
    int64_t istr[KF_MAX_DIMS], s = 1;
    for (int g = ng - 1; g >= 0; g--) {
        istr[g] = gb[g] ? 0 : s;
        if (!gb[g]) s *= gsize[g];
    }
    return kf_lw_dot(w, coords, istr, ng, 0);
}

int kf_lw_check(kf_lw *w, kf_err *err) {
    const char *why = kir_failure(w->k);
    if (!why) return 0;
    if (strcmp(why, "out of memory") == 0) return kf_fail(err, KF_E_NOMEM, "lowering %s: out of memory", w->n->op);
    return kf_fail(err, KF_E_INTERNAL, "lowering %s: kernel IR: %s", w->n->op, why);
}

int kf_lw_unsupported(kf_err *err, const kf_node *n, const char *why) {
    if (why && *why) return kf_fail(err, KF_E_UNSUPPORTED, "unsupported op: %s (%s)", n->op, why);
    return kf_fail(err, KF_E_UNSUPPORTED, "unsupported op: %s", n->op);
}
