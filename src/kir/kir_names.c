/* kir_names.c: printable names of the kernel IR's operators and loop kinds, shared by the
 * dump and the renderers' error messages. */
#include "kir/kir.h"
#include "kir/kir_int.h"

const char *kir_unop_name(int op) {
    static const char *const names[KIR_UN_COUNT] = {
        [KIR_NEG] = "neg", [KIR_NOT] = "not", [KIR_ABS] = "abs", [KIR_EXP] = "exp",
        [KIR_EXPM1] = "expm1", [KIR_LOG] = "log", [KIR_LOG1P] = "log1p", [KIR_SQRT] = "sqrt",
        [KIR_RSQRT] = "rsqrt", [KIR_RECIP] = "recip", [KIR_TANH] = "tanh",
        [KIR_SIGMOID] = "sigmoid", [KIR_ERF] = "erf", [KIR_SIN] = "sin", [KIR_COS] = "cos",
        [KIR_FLOOR] = "floor", [KIR_CEIL] = "ceil", [KIR_ROUND] = "round", [KIR_SIGN] = "sign",
        [KIR_ISNAN] = "isnan", [KIR_EXP2I] = "exp2i",
        [KIR_FREXP_M] = "frexp_m", [KIR_FREXP_E] = "frexp_e",
    };
    return op >= 0 && op < KIR_UN_COUNT && names[op] ? names[op] : "?";
}

const char *kir_binop_name(int op) {
    static const char *const names[KIR_BIN_COUNT] = {
        [KIR_ADD] = "+", [KIR_SUB] = "-", [KIR_MUL] = "*", [KIR_DIV] = "/", [KIR_MOD] = "mod",
        [KIR_MAX] = "max", [KIR_MIN] = "min", [KIR_POW] = "pow", [KIR_FMOD] = "fmod",
        [KIR_LT] = "<", [KIR_LE] = "<=", [KIR_GT] = ">", [KIR_GE] = ">=", [KIR_EQ] = "==",
        [KIR_NE] = "!=", [KIR_AND] = "&&", [KIR_OR] = "||",
    };
    return op >= 0 && op < KIR_BIN_COUNT && names[op] ? names[op] : "?";
}

const char *kir_loop_name(kir_loop_kind l) {
    switch (l) {
    case KIR_LOOP_SERIAL: return "serial";
    case KIR_LOOP_PARALLEL: return "parallel";
    case KIR_LOOP_VECTOR: return "vector";
    case KIR_LOOP_UNROLL: return "unroll";
    }
    return "?";
}
