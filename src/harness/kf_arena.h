/* kf_arena.h: the harness's host arena (private to src/harness). One MAP_SHARED anonymous
 * mapping, shared with the worker process, holding a slot [guard | data | guard] for every
 * buffer of a program, in program order. The parent writes guards, inputs and params, poisons
 * outputs and scratch before every run, and checks after the run that the guards are intact
 * and the inputs and params are byte-identical to what it wrote. */
#ifndef KF_ARENA_H
#define KF_ARENA_H

#include <stddef.h>
#include "core/kf_err.h"
#include "ir/kf_program.h"
#include "ir/kf_safetensors.h"
#include "targets/kf_target.h"

typedef struct kf_arena {
    const kf_program *p;
    unsigned char *map;
    size_t map_len;
    kf_slot *slots;        /* p->n_bufs, program order */
    const void **written;  /* what fill() copied into each input/param slot (caller-owned) */
} kf_arena;

/* Maps and lays out the slots (data 64-byte aligned) and writes every guard; the data pages
 * are left untouched (a device data path never needs them on the host). */
int kf_arena_create(kf_arena *a, const kf_program *p, kf_err *err);
void kf_arena_destroy(kf_arena *a);

/* Writes the guards, copies inputs ("in.<index>" of case_st) and params (by the buffer's
 * param value name in params_st) into their slots, and poisons outputs and scratch with
 * KF_POISON_BYTE. The source tensors must stay mapped until the matching check. A missing
 * tensor or a size disagreement is KF_E_INVALID with the buffer named. */
int kf_arena_fill(kf_arena *a, const kf_safetensors *case_st, const kf_safetensors *params_st,
                  kf_err *err);

/* After a run: 0 if every guard is intact and every input/param is unchanged. Otherwise
 * KF_E_INVALID and *what is 1 for a guard overwrite ("out-of-bounds write: guard bytes after
 * buffer 'y' overwritten at offset N ...") or 2 for a changed input/param ("input 'x' was
 * modified ..."). */
int kf_arena_check(const kf_arena *a, int *what, kf_err *err);

size_t kf_arena_bytes(const kf_arena *a);

/* The tensor that input or param buffer i is filled from ("in.<index>" of case_st, the param
 * value name in params_st), checked for presence, size and dtype (KF_E_INVALID naming the
 * buffer, as kf_arena_fill says it); *t = NULL for outputs and scratch. */
int kf_arena_source(const kf_program *p, int i, const kf_safetensors *case_st,
                    const kf_safetensors *params_st, const kf_st_tensor **t, kf_err *err);
int kf_arena_match(const kf_program *p, int i, const kf_st_tensor *t, const char *what,
                   kf_err *err);
/* The messages of kf_arena_check (KF_E_INVALID): guard bytes of buffer i changed (after = 0:
 * the guard before it, off = offset in that guard; found = first changed byte, cnt = how
 * many), and an input or param changed (first changed byte, count). */
int kf_arena_guard_fail(const kf_program *p, int i, int after, long off, int found, size_t cnt,
                        kf_err *err);
int kf_arena_changed_fail(const kf_program *p, int i, size_t first, size_t changed, kf_err *err);

#endif
