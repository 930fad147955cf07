/* fuse_direct.c: a vectorised direct convolution (any groups, including depthwise, stride,
 * dilation, padding, 1 to 3 spatial dims). The input is first copied into a zero-padded
 * scratch buffer (skipped when there is no padding and the input is stored), so the main
 * kernel has no bounds tests; its channel planes are an odd multiple of 64 bytes apart, so
 * reading one position of many channels does not thrash one L1 set. Threads split (image,
 * block of output channels, first output dim); the innermost output dim runs as SIMD lanes,
 * each lane keeping `block` output channels times `parts` output positions (ow, ow + span,
 * ... of a long row, or the same ow of consecutive rows) in registers while the loops over
 * the group's input channels and the kernel taps accumulate weight * input with fused
 * multiply-adds (one weight broadcast feeds `parts` FMAs); positions past parts * span run
 * in a second one-part loop. A row that is not a whole number of 16-lane vectors runs as
 * vectors whose last one overlaps its neighbour. Then the bias and the
 * group's elementwise epilogue are applied and the results stored, all in the same kernel. */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

int kf_fl_direct_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_CONV) return 0;
    kf_conv_attr a;
    if (!kf_fl_conv_attr(g, &g->nodes[an], &a) || a.transposed) return 0;
    double padded = (double)a.N * (double)a.Cin * 4.0;
    for (int j = 0; j < a.nsd; j++) padded *= (double)(a.I[j] + 2 * a.pad[j]);
    return padded <= 1.5e9;
}

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

typedef struct padk {
    kf_fl *c;
    const kf_conv_attr *a;
    kf_fexpr x;
    int xpb;
    int64_t IP[3];
    double fill;
} padk;

/* Zero-padded copy, dims from j inward; xo: x offset of the enclosing dims (valid rows only),
 * po: element offset in the padded buffer where the block of dims j.. starts. */
static void pad_dim(padk *p, kir_stmt *parent, int j, kir_expr *xo, kir_expr *po) {
    kir_kernel *k = p->c->k;
    const kf_conv_attr *a = p->a;
    int64_t IP = p->IP[j], In = a->I[j], pd = a->pad[j];
    if (j == a->nsd - 1 && a->stride[j] > 1) {
        /* phase-split row: position p at (p % s) * PW + p / s */
        int64_t st = a->stride[j], PW = IP / st;
        int pb = kir_add_var(k, "pb", KIR_T_I64), xb = kir_add_var(k, "xb", KIR_T_I64);
        kir_append(k, parent, kir_decl(k, pb, po));
        kir_append(k, parent, kir_decl(k, xb, kir_mul(k, xo, I(k, In))));
        for (int64_t ph = 0; ph < st; ph++) {
            int64_t lo = pd - ph > 0 ? (pd - ph + st - 1) / st : 0;
            int64_t top = In - 1 + pd - ph;
            int64_t hi = top < 0 ? 0 : top / st + 1;
            if (lo > PW) lo = PW;
            if (hi > PW) hi = PW;
            if (hi < lo) hi = lo;
            int64_t ranges[3][2] = {{0, lo}, {lo, hi}, {hi, PW}};
            for (int r = 0; r < 3; r++) {
                if (ranges[r][1] <= ranges[r][0]) continue;
                int q = kir_add_var(k, "q", KIR_T_I64);
                kir_stmt *l = kir_for(k, q, I(k, ranges[r][0]), I(k, ranges[r][1]), 1, KIR_LOOP_VECTOR);
                kir_append(k, parent, l);
                kir_expr *dst = kir_add(k, V(k, pb), kir_add(k, I(k, ph * PW), V(k, q)));
                kir_expr *v = kir_flt(k, p->fill, KIR_T_F32);
                if (r == 1) {
                    kir_expr *src = kir_add(k, V(k, xb), kir_add(k, kir_mul(k, V(k, q), I(k, st)), I(k, ph - pd)));
                    v = kf_fexpr_elem(&p->x, a->x, src);
                    if (!v) return;
                    v = kf_lw_cvt(k, KIR_T_F32, v);
                }
                kir_append(k, l, kir_store(k, p->xpb, dst, v));
            }
        }
        return;
    }
    if (j == a->nsd - 1) {
        int pb = kir_add_var(k, "pb", KIR_T_I64), xb = kir_add_var(k, "xb", KIR_T_I64);
        kir_append(k, parent, kir_decl(k, pb, po));
        kir_append(k, parent, kir_decl(k, xb, kir_bin(k, KIR_SUB, kir_mul(k, xo, I(k, In)), I(k, pd))));
        int q;
        if (pd > 0) {
            kir_stmt *l = kf_lw_loop(&(kf_lw){.k = k}, parent, "q", pd, KIR_LOOP_VECTOR, &q);
            kir_append(k, l, kir_store(k, p->xpb, kir_add(k, V(k, pb), V(k, q)), kir_flt(k, p->fill, KIR_T_F32)));
            q = kir_add_var(k, "q", KIR_T_I64);
            l = kir_for(k, q, I(k, pd + In), I(k, IP), 1, KIR_LOOP_VECTOR);
            kir_append(k, parent, l);
            kir_append(k, l, kir_store(k, p->xpb, kir_add(k, V(k, pb), V(k, q)), kir_flt(k, p->fill, KIR_T_F32)));
        }
        q = kir_add_var(k, "q", KIR_T_I64);
        kir_stmt *l = kir_for(k, q, I(k, pd), I(k, pd + In), 1, KIR_LOOP_VECTOR);
        kir_append(k, parent, l);
        kir_expr *v = kf_fexpr_elem(&p->x, a->x, kir_add(k, V(k, xb), V(k, q)));
        if (v) kir_append(k, l, kir_store(k, p->xpb, kir_add(k, V(k, pb), V(k, q)), kf_lw_cvt(k, KIR_T_F32, v)));
        return;
    }
    int o;
    kir_stmt *l = kf_lw_loop(&(kf_lw){.k = k}, parent, "pr", IP, KIR_LOOP_SERIAL, &o);
    int iv = kir_add_var(k, "i", KIR_T_I64);
    kir_append(k, l, kir_decl(k, iv, kir_bin(k, KIR_SUB, V(k, o), I(k, pd))));
    kir_expr *in = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, V(k, iv), I(k, 0)), kir_bin(k, KIR_LT, V(k, iv), I(k, In)));
    kir_stmt *iff = kir_if(k, in);
    kir_append(k, l, iff);
    int64_t inner = 1;
    for (int q = j + 1; q < a->nsd; q++) inner *= p->IP[q];
    kir_expr *po2 = kir_add(k, kir_expr_clone(k, po), kir_mul(k, V(k, o), I(k, inner)));
    pad_dim(p, iff, j + 1, kir_add(k, kir_mul(k, xo, I(k, In)), V(k, iv)), po2);
    /* a padding row: zero all of it */
    kir_stmt *els = kir_block(k);
    kir_append_else(k, iff, els);
    int z;
    kir_stmt *zl = kf_lw_loop(&(kf_lw){.k = k}, els, "z", inner, KIR_LOOP_VECTOR, &z);
    kir_expr *zo = kir_add(k, po, kir_mul(k, V(k, o), I(k, inner)));
    kir_append(k, zl, kir_store(k, p->xpb, kir_add(k, zo, V(k, z)), kir_flt(k, p->fill, KIR_T_F32)));
}

static int pad_kernel(kf_fl *c, const kf_conv_attr *a, int xpp, const int64_t *IP, int64_t CS, double fill,
                      const kf_gsched *s, kf_err *err) {
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    padk p;
    memset(&p, 0, sizeof p);
    p.c = c;
    p.a = a;
    memcpy(p.IP, IP, sizeof p.IP);
    kf_fl_fexpr(c, &p.x);
    p.xpb = kf_fl_kbuf(c, xpp, 1);
    p.fill = fill;
    int r = kir_add_var(k, "r", KIR_T_I64);
    kir_stmt *rl = kir_for(k, r, I(k, 0), I(k, a->N * a->Cin), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, rl);
    pad_dim(&p, rl, 0, V(k, r), kir_mul(k, V(k, r), I(k, CS)));
    if (p.x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return p.x.rc;
    }
    kf_gsched ks = *s;
    ks.vec = 0;
    return kf_fl_kernel_end(c, &ks, err);
}

int kf_fl_pad_input(kf_fl *c, const kf_conv_attr *a, double fill, int skew, const kf_gsched *s, int64_t *IP, int64_t *PW,
                    int64_t *CS, kf_err *err) {
    int padded = 0;
    for (int j = 0; j < 3; j++) IP[j] = 1;
    for (int j = 0; j < a->nsd; j++) {
        IP[j] = a->I[j] + 2 * a->pad[j];
        padded |= a->pad[j] > 0;
    }
    /* a strided last dim is stored phase by phase, each phase PW long */
    int L0 = a->nsd - 1;
    *PW = (IP[L0] + a->stride[L0] - 1) / a->stride[L0];
    if (a->stride[L0] > 1) {
        IP[L0] = *PW * a->stride[L0];
        padded = 1;
    }
    int64_t plane = 1;
    for (int j = 0; j < a->nsd; j++) plane *= IP[j];
    int64_t cs = plane;
    if (skew && a->cin_g > 1) {
        /* channel planes 64 * odd bytes apart, so the same position of successive channels
         * falls into different L1 sets (a multiple of 4 KiB puts them all into one) */
        cs = (plane + 15) / 16 * 16;
        if ((cs / 16) % 2 == 0) cs += 16;
        if (cs != plane && !padded && plane % 64 != 0) cs = plane;  /* at least 32 sets: read in place */
        if (cs != plane) padded = 1;
    }
    if (CS) *CS = cs;
    int xpp = padded ? -1 : kf_fl_value_pbuf(c, a->x);
    if (xpp >= 0) return xpp;
    xpp = kf_fl_scratch(c, KF_F32, a->N * a->Cin * cs);
    if (xpp < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int rc = pad_kernel(c, a, xpp, IP, cs, fill, s, err);
    return rc ? rc : xpp;
}

/* float lanes of the widest vectors the cpu target asks for (512 bits) */
#define DC_LANES 16

typedef struct dc {
    kf_fl *c;
    const kf_conv_attr *a;
    kf_fexpr x;
    int xb, wb;
    int n, co0, g, ci;
    int ov[3];
    int64_t PW;                  /* phase length of the padded last dim (stride > 1) */
    int acc[64];                 /* [b * parts + p] */
    int block;
    int parts;                   /* output positions per lane, p < parts: */
    int64_t xstep, ostep;        /* input / output flat offsets from part p to part p + 1 */
    int64_t IP[3];
    int64_t CS;                  /* floats from one input channel plane to the next */
} dc;

/* Input offset of the last dim for output position ow (variable) and tap kt (expression):
 * with a stride > 1 the padded row is stored phase by phase (position p at
 * (p % s) * PW + p / s), so consecutive outputs read consecutive floats. */
static kir_expr *last_pos(dc *d, kir_expr *kt) {
    kir_kernel *k = d->c->k;
    const kf_conv_attr *a = d->a;
    int L = a->nsd - 1;
    int64_t s = a->stride[L], dl = a->dil[L];
    if (s == 1) return kir_add(k, V(k, d->ov[L]), kir_mul(k, kt, I(k, dl)));
    kir_expr *td = kir_mul(k, kt, I(k, dl));
    kir_expr *phase = kir_bin(k, KIR_MOD, kir_expr_clone(k, td), I(k, s));
    return kir_add(k, kir_add(k, kir_mul(k, phase, I(k, d->PW)), V(k, d->ov[L])), kir_bin(k, KIR_DIV, td, I(k, s)));
}

/* One tap: xv = input under it, acc_b += w_b * xv. kt[q] are the tap coordinates. */
static void one_tap(dc *d, kir_stmt *parent, kir_expr **kt) {
    kir_kernel *k = d->c->k;
    const kf_conv_attr *a = d->a;
    int L = a->nsd - 1;
    kir_expr *xi = kir_mul(k, kir_add(k, kir_mul(k, V(k, d->n), I(k, a->Cin)),
                                      kir_add(k, kir_mul(k, V(k, d->g), I(k, a->cin_g)), V(k, d->ci))),
                           I(k, d->CS));
    kir_expr *xp = NULL;
    kir_expr *wi = kir_add(k, kir_mul(k, V(k, d->co0), I(k, a->cin_g)), V(k, d->ci));
    int64_t taps = 1;
    for (int q = 0; q < a->nsd; q++) {
        kir_expr *pos = q < L ? kir_add(k, kir_mul(k, V(k, d->ov[q]), I(k, a->stride[q])),
                                        kir_mul(k, kir_expr_clone(k, kt[q]), I(k, a->dil[q])))
                              : last_pos(d, kir_expr_clone(k, kt[q]));
        xp = xp ? kir_add(k, kir_mul(k, xp, I(k, d->IP[q])), pos) : pos;
        wi = kir_add(k, kir_mul(k, wi, I(k, a->Kd[q])), kir_expr_clone(k, kt[q]));
        taps *= a->Kd[q];
    }
    int xv[4], wv = kir_add_var(k, "wi", KIR_T_I64);
    kir_expr *x0 = kir_add(k, xi, xp);
    for (int p = 0; p < d->parts; p++) {
        xv[p] = kir_add_var(k, "xv", KIR_T_F32);
        kir_expr *at = p ? kir_add(k, kir_expr_clone(k, x0), I(k, p * d->xstep)) : x0;
        kir_append(k, parent, kir_decl(k, xv[p], kir_load(k, d->xb, at)));
    }
    kir_append(k, parent, kir_decl(k, wv, wi));
    for (int b = 0; b < d->block; b++) {
        kir_expr *w = kir_load(k, d->wb, b ? kir_add(k, V(k, wv), I(k, b * a->cin_g * taps)) : V(k, wv));
        if (d->parts > 1) {
            int wl = kir_add_var(k, "w", KIR_T_F32);
            kir_append(k, parent, kir_decl(k, wl, w));
            w = V(k, wl);
        }
        for (int p = 0; p < d->parts; p++) {
            int acc = d->acc[b * d->parts + p];
            kir_expr *wp = p ? kir_expr_clone(k, w) : w;
            kir_append(k, parent, kir_assign(k, acc, kir_fma(k, wp, V(k, xv[p]), V(k, acc))));
        }
    }
}

/* The reduction over the group's input channels (a loop) and the taps, written out one by
 * one when there are at most 64 (so every load's address is affine in the channel and the
 * compiler vectorises the output loop around the single remaining inner loop), else loops. */
static void reduce_taps(dc *d, kir_stmt *parent) {
    kir_kernel *k = d->c->k;
    const kf_conv_attr *a = d->a;
    int64_t taps = 1;
    for (int q = 0; q < a->nsd; q++) taps *= a->Kd[q];
    kir_expr *kt[3];
    if (taps <= 64) {
        for (int64_t t = 0; t < taps; t++) {
            int64_t rem = t;
            for (int q = a->nsd - 1; q >= 0; q--) {
                kt[q] = I(k, rem % a->Kd[q]);
                rem /= a->Kd[q];
            }
            one_tap(d, parent, kt);
        }
        return;
    }
    kir_stmt *l = parent;
    for (int q = 0; q < a->nsd; q++) {
        int v;
        l = kf_lw_loop(&(kf_lw){.k = k}, l, "kt", a->Kd[q], KIR_LOOP_SERIAL, &v);
        kt[q] = V(k, v);
    }
    one_tap(d, l, kt);
}

static int pick_block(const kf_conv_attr *a, int want) {
    if (want <= 0) want = 8;
    if (want > 16) want = 16;
    for (int b = want; b > 1; b--)
        if (a->cout_g % b == 0) return b;
    return 1;
}

/* Output positions per lane: `want` (the schedule's tile; 0: 2, or 4 with at most 2 output
 * channels per lane, so that enough independent FMA chains run) while the accumulators fit
 * in the 32 vector registers beside the inputs: spans of the row (ow, ow + span, ...) when
 * each is at least a vector long, else (*rows = 1) consecutive rows (first output dim) when
 * their count divides it, else fewer spans. */
static int pick_parts(const kf_conv_attr *a, int want, int block, int *rows) {
    *rows = 0;
    if (want <= 0) want = block <= 2 ? 4 : 2;   /* few channels per lane (depthwise): more positions */
    if (want > 4) want = 4;
    while (want > 1 && block * want + want > 28) want--;
    int64_t w = a->O[a->nsd - 1];
    if (w / want >= DC_LANES) return want;
    if (a->nsd >= 2)
        for (int p = want; p > 1; p--)
            if (a->O[0] % p == 0) {
                *rows = 1;
                return p;
            }
    while (want > 1 && w / want < DC_LANES) want--;
    return want;
}

/* One row of outputs: a vector loop over ow in [lo, hi), each lane accumulating `block`
 * output channels at `parts` positions (flat offsets xstep / ostep apart in the input and the
 * output), then bias, epilogue and stores. */
static int conv_row(dc *d, int gi, kir_stmt *body, int64_t lo, int64_t hi, int parts, int64_t xstep, int64_t ostep,
                    kf_err *err) {
    kf_fl *c = d->c;
    kir_kernel *k = c->k;
    const kf_conv_attr *a = d->a;
    const kf_node *node = &c->g->nodes[c->plan->groups[gi].anchor];
    int L = a->nsd - 1;
    d->parts = parts;
    d->xstep = xstep;
    d->ostep = ostep;
    d->ov[L] = kir_add_var(k, "ow", KIR_T_I64);
    kir_stmt *vl;
    int64_t len = hi - lo;
    if (len > DC_LANES && len % DC_LANES) {
        /* the row as DC_LANES-wide vectors, the last one overlapping its neighbour (its
         * positions are recomputed and stored again with the same values): compilers run
         * the remainder of an outer-loop vectorised row as scalar code, which would cost as
         * much as a dozen vectors here */
        int cv, st = kir_add_var(k, "os", KIR_T_I64), l;
        kir_stmt *chunks = kf_lw_loop(&(kf_lw){.k = k}, body, "cv", (len + DC_LANES - 1) / DC_LANES, KIR_LOOP_SERIAL, &cv);
        kir_append(k, chunks, kir_decl(k, st, kir_add(k, I(k, lo), kir_bin(k, KIR_MIN, kir_mul(k, V(k, cv), I(k, DC_LANES)),
                                                                           I(k, len - DC_LANES)))));
        vl = kf_lw_loop(&(kf_lw){.k = k}, chunks, "l", DC_LANES, KIR_LOOP_VECTOR, &l);
        kir_append(k, vl, kir_decl(k, d->ov[L], kir_add(k, V(k, st), V(k, l))));
    } else {
        vl = kir_for(k, d->ov[L], I(k, lo), I(k, hi), 1, KIR_LOOP_VECTOR);
        kir_append(k, body, vl);
    }
    for (int b = 0; b < d->block; b++)
        for (int p = 0; p < parts; p++) {
            kir_expr *init = kir_flt(k, 0.0, KIR_T_F32);
            if (a->bias >= 0) {
                kir_expr *bl = kf_fexpr_elem(&d->x, a->bias, kir_add(k, V(k, d->co0), I(k, b)));
                if (bl) init = kf_lw_cvt(k, KIR_T_F32, bl);
            }
            d->acc[b * parts + p] = kir_add_var(k, "acc", KIR_T_F32);
            kir_append(k, vl, kir_decl(k, d->acc[b * parts + p], init));
        }
    kir_stmt *cl = kf_lw_loop(&(kf_lw){.k = k}, vl, "ci", a->cin_g, KIR_LOOP_SERIAL, &d->ci);
    reduce_taps(d, cl);
    /* bias is in the start value; the epilogue per output channel and part */
    int rc = 0;
    for (int b = 0; b < d->block && !rc && !d->x.rc; b++)
        for (int p = 0; p < parts && !rc && !d->x.rc; p++) {
            kir_expr *idx = kir_add(k, kir_mul(k, V(k, d->n), I(k, a->Cout)), kir_add(k, V(k, d->co0), I(k, b)));
            for (int q = 0; q < a->nsd; q++) idx = kir_add(k, kir_mul(k, idx, I(k, a->O[q])), V(k, d->ov[q]));
            if (p) idx = kir_add(k, idx, I(k, p * ostep));
            kir_stmt *blk = kir_block(k);
            kir_append(k, vl, blk);
            rc = kf_fl_epilogue_at(c, &d->x, gi, blk, d->acc[b * parts + p], idx);
            if (!rc && !c->plan->stored[node->outs[0]] && !kf_fl_has_epilogue(c, gi))
                rc = kf_fail(err, KF_E_INTERNAL, "fusion: convolution result is neither stored nor consumed");
        }
    return rc;
}

int kf_fl_conv_direct(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *node = &c->g->nodes[gr->anchor];
    kf_conv_attr a;
    if (!kf_fl_conv_attr(c->g, node, &a) || a.transposed)
        return kf_lw_unsupported(err, node, "not a convolution the direct kernel can run");
    int wpb = kf_fl_materialise(c, a.w, s, err);
    if (wpb < 0) return wpb;
    int64_t IP[3] = {1, 1, 1}, PW = 0, CS = 0;
    c->gi = gi;
    int xpp = kf_fl_pad_input(c, &a, 0.0, 1, s, IP, &PW, &CS, err);
    if (xpp < 0) return xpp;
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    dc d;
    memset(&d, 0, sizeof d);
    d.c = c;
    d.a = &a;
    memcpy(d.IP, IP, sizeof d.IP);
    d.PW = PW;
    d.CS = CS;
    d.block = pick_block(&a, s->block);
    kf_fl_fexpr(c, &d.x);
    d.xb = kf_fl_kbuf(c, xpp, 0);
    d.wb = kf_fl_kbuf(c, wpb, 0);
    int64_t nb = a.Cout / d.block;
    int L = a.nsd - 1;
    int rows = 0;
    int parts = pick_parts(&a, s->tile, d.block, &rows);
    /* tasks: (image, channel block, first output dim (by `parts` rows) unless it is the
     * vector dim) */
    int64_t o0 = L > 0 ? a.O[0] / (rows ? parts : 1) : 1;
    int t = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, t, I(k, 0), I(k, a.N * nb * o0), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    d.n = kir_add_var(k, "n", KIR_T_I64);
    d.co0 = kir_add_var(k, "co", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, d.n, kir_bin(k, KIR_DIV, V(k, t), I(k, nb * o0))));
    kir_append(k, tl, kir_decl(k, d.co0, kir_mul(k, kir_bin(k, KIR_MOD, kir_bin(k, KIR_DIV, V(k, t), I(k, o0)), I(k, nb)),
                                                 I(k, d.block))));
    kir_stmt *body = tl;
    if (L > 0) {
        d.ov[0] = kir_add_var(k, "o0", KIR_T_I64);
        kir_expr *r0 = kir_bin(k, KIR_MOD, V(k, t), I(k, o0));
        kir_append(k, tl, kir_decl(k, d.ov[0], rows ? kir_mul(k, r0, I(k, parts)) : r0));
    }
    for (int q = 1; q < L; q++) body = kf_lw_loop(&(kf_lw){.k = k}, body, "or", a.O[q], KIR_LOOP_SERIAL, &d.ov[q]);
    d.g = kir_add_var(k, "g", KIR_T_I64);
    kir_append(k, body, kir_decl(k, d.g, kir_bin(k, KIR_DIV, V(k, d.co0), I(k, a.cout_g))));
    if (rows) {
        /* `parts` rows at once: the input rows stride[0] apart, the output rows one apart */
        int64_t xrow = a.stride[0], orow = 1;
        for (int q = 1; q < a.nsd; q++) {
            xrow *= d.IP[q];
            orow *= a.O[q];
        }
        rc = conv_row(&d, gi, body, 0, a.O[L], parts, xrow, orow, err);
    } else {
        /* parts interleaved spans of the row per lane, then the rest one by one */
        int64_t span = a.O[L] / parts;
        rc = conv_row(&d, gi, body, 0, parts > 1 ? span : a.O[L], parts, span, span, err);
        if (!rc && parts > 1 && parts * span < a.O[L]) rc = conv_row(&d, gi, body, parts * span, a.O[L], 1, 0, 0, err);
    }
    if (rc || d.x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return rc ? rc : d.x.rc;
    }
    /* the loops are already vectorised where it matters; the vector math still applies */
    kf_gsched ks = *s;
    if (ks.vec) ks.vec = 3;
    return kf_fl_kernel_end(c, &ks, err);
}
