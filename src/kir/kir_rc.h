/* kir_rc.h: state shared by the C renderer's files (kir_render_c.c: kernels and statements,
 * kir_render_c_expr.c: expressions, kir_render_c_prelude.c: includes and helper functions).
 * Internal to src/kir. */
#ifndef KIR_RC_H
#define KIR_RC_H

#include "kir/kir.h"

typedef struct kir_rc {
    const kir_kernel *k;
    char **bname, **vname;  /* C identifiers of buffers and variables */
    int *live;              /* var in scope (declared by an enclosing FOR or an earlier DECL) */
    int *scope; int n_scope, cap_scope; /* vars declared, innermost last, to end scopes */
    int *reads;             /* reads of each var in the whole kernel */
    int in_par, in_simd;    /* inside an OpenMP parallel region / simd loop */
    /* CUDA 16-byte accesses (kir_render_cuda): a load of a buffer flagged in vec_ld whose
     * index expression is one of vec_idx[] is component vec_lane of the float4 kf_vl<buf>
     * loaded before */
    const unsigned char *vec_ld;
    const kir_expr *const *vec_idx;
    int n_vec_idx, vec_lane;
    kf_err *err;
    int rc;                 /* first error (0 while fine) */
} kir_rc;

/* Records the first error; later ones are dropped. */
void kir_rc_fail(kir_rc *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *kir_rc_ctype(kir_type t);      /* C type of a value or local of type t */
const char *kir_rc_buf_ctype(kf_dtype dt); /* C element type of a buffer */
int kir_rc_var_ok(kir_rc *c, int var);     /* id in range (else records an error) */
/* An expression in its own type / converted to t. Rendered text is always a primary or
 * postfix expression or fully parenthesised, so it can be embedded anywhere. */
void kir_rc_expr(kir_rc *c, const kir_expr *e, kf_str *o);
void kir_rc_expr_as(kir_rc *c, const kir_expr *e, kir_type t, kf_str *o);
void kir_rc_prelude(kf_str *o);            /* includes and the guarded helper functions */

#endif
