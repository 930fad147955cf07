/* kf_oracle_proc.h: internals shared by kf_oracle.c (the child process and its pipes) and
 * kf_oracle_verbs.c (the typed requests). Not part of the public contract. */
#ifndef KF_ORACLE_PROC_H
#define KF_ORACLE_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "oracle/kf_oracle.h"

#define KF_ORACLE_RING 16384 /* bytes of the child's stderr kept for error messages */

struct kf_oracle {
    pid_t pid;          /* child (and its process group); 0 once reaped */
    int to_child;       /* child's stdin */
    int from_child;     /* child's stdout */
    int err_from_child; /* child's stderr; -1 once closed */
    int dead;           /* 1 after EOF, a timeout kill or a write error */
    double timeout_s;
    char *device;
    int threads;
    char *workdir;
    int owns_workdir;   /* workdir made by kf_oracle_start (removed by kf_oracle_stop) */
    char *rbuf;         /* stdout bytes not yet consumed (partial line) */
    size_t rlen, rcap;
    char ring[KF_ORACLE_RING];
    size_t ring_pos;    /* next write position */
    int ring_full;
};

/* Sends line (no newline) and reads one reply line into *reply (malloc'd, no newline).
 * KF_E_ORACLE when the child is gone ("oracle exited: <last stderr lines>"), KF_E_TIMEOUT
 * after timeout_s (the child is killed), KF_E_IO on pipe errors. */
int kf_oracle_exchange(kf_oracle *o, const char *line, double timeout_s, char **reply,
                       kf_err *err);
/* Sends a cJSON request and returns the parsed reply whether "ok" is true or false;
 * *resp is a cJSON* the caller deletes. */
int kf_oracle_exchange_json(kf_oracle *o, const void *req, void **resp, kf_err *err);
/* The last lines of the child's stderr, newlines turned into " | ", into buf. */
const char *kf_oracle_stderr_tail(kf_oracle *o, char *buf, size_t n);

#endif
