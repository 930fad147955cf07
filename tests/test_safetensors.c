/* test_safetensors.c: round trip, malformed files, and a file written by Python. */
#include "core/kf_str.h"
#include "ir/kf_safetensors.h"
#include "kf_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* 8-byte LE length + header + data_len bytes of data (0, 1, 2, ...). Caller frees. */
static unsigned char *make_st(const char *header, size_t data_len, size_t *len) {
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (unsigned char)i;
    return b;
}

/* Parses header+data, expects failure with KF_E_FORMAT and a message containing want. */
static void expect_bad(const char *header, size_t data_len, const char *want) {
    size_t len;
    unsigned char *b = make_st(header, data_len, &len);
    kf_safetensors st;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_st_parse(b, len, &st, &err);
    KF_CHECK_MSG(rc == KF_E_FORMAT, "header %s: rc %d", header, rc);
    KF_CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    KF_CHECK(st.n_tensors == 0 && st.tensors == NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    free(b);
}

static char tmpdir[64];

static void test_roundtrip(void) {
    float a[6] = {1, 2, 3, 4, 5, 6.5f};
    int64_t b[3] = {-1, 0, INT64_MAX};
    uint8_t c[1] = {1};
    kf_st_tensor ts[4] = {
        {.name = "w.weight", .desc = {.dtype = KF_F32, .ndim = 2, .shape = {2, 3}}, .data = a,
         .nbytes = sizeof a},
        {.name = "idx", .desc = {.dtype = KF_I64, .ndim = 1, .shape = {3}}, .data = b,
         .nbytes = sizeof b},
        {.name = "empty", .desc = {.dtype = KF_F32, .ndim = 2, .shape = {0, 5}}, .data = NULL,
         .nbytes = 0},
        {.name = "flag", .desc = {.dtype = KF_BOOL, .ndim = 0}, .data = c, .nbytes = 1},
    };
    char *path = kf_asprintf("%s/rt.safetensors", tmpdir);
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_MSG(kf_st_write(path, ts, 4, &err) == 0, "%s", err.msg);
    kf_safetensors st;
    int rc = kf_st_open(path, &st, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(st.n_tensors, 4);
        uint64_t hl = 0;
        memcpy(&hl, st.map, 8);
        KF_CHECK_EQ_INT(hl % 8, 0);
        const kf_st_tensor *t = kf_st_find(&st, "w.weight");
        KF_CHECK(t && t->desc.dtype == KF_F32 && t->desc.ndim == 2 && t->desc.shape[1] == 3);
        KF_CHECK(t && t->desc.strides[0] == 3 && t->desc.strides[1] == 1);
        KF_CHECK(t && t->nbytes == sizeof a && memcmp(t->data, a, sizeof a) == 0);
        KF_CHECK(t && ((uintptr_t)t->data % 8) == 0);
        t = kf_st_find(&st, "idx");
        KF_CHECK(t && t->desc.dtype == KF_I64 && memcmp(t->data, b, sizeof b) == 0);
        t = kf_st_find(&st, "empty");
        KF_CHECK(t && t->nbytes == 0 && t->desc.shape[0] == 0 && t->desc.shape[1] == 5);
        t = kf_st_find(&st, "flag");
        KF_CHECK(t && t->desc.ndim == 0 && t->nbytes == 1 && *(const uint8_t *)t->data == 1);
        KF_CHECK(kf_st_find(&st, "nope") == NULL);
        /* file order of data_offsets */
        KF_CHECK_STR(st.tensors[0].name, "w.weight");
        KF_CHECK_STR(st.tensors[3].name, "flag");
        kf_st_close(&st);
        KF_CHECK(st.map == NULL && st.tensors == NULL);
    }
    /* writer refuses a descriptor that does not match the data size */
    kf_st_tensor bad = ts[0];
    bad.nbytes = 8;
    KF_CHECK_EQ_INT(kf_st_write(path, &bad, 1, &err), KF_E_INVALID);
    /* an empty file set round-trips */
    KF_CHECK_EQ_INT(kf_st_write(path, NULL, 0, &err), 0);
    KF_CHECK_EQ_INT(kf_st_open(path, &st, &err), 0);
    KF_CHECK_EQ_INT(st.n_tensors, 0);
    kf_st_close(&st);
    free(path);
}

static void test_parse_buffer(void) {
    size_t len;
    unsigned char *b = make_st("{\"__metadata__\":{\"format\":\"pt\"},"
                               "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                               "\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}  ",
                               12, &len);
    kf_safetensors st;
    kf_err err;
    int rc = kf_st_parse(b, len, &st, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(st.n_tensors, 2);
        KF_CHECK_STR(st.tensors[0].name, "a");
        KF_CHECK_STR(st.tensors[1].name, "b");
        KF_CHECK(st.map == NULL);
        KF_CHECK(kf_st_find(&st, "b")->data == b + len - 4);
        kf_st_close(&st);
    }
    free(b);
}

static void test_malformed(void) {
    const char *ok_t = "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char h[512];
    /* truncated: fewer than 8 bytes */
    kf_safetensors st;
    kf_err err;
    unsigned char tiny[5] = {1, 0, 0, 0, 0};
    KF_CHECK_EQ_INT(kf_st_parse(tiny, sizeof tiny, &st, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "truncated") != NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    /* header length past EOF */
    size_t len;
    snprintf(h, sizeof h, "{%s}", ok_t);
    unsigned char *b = make_st(h, 8, &len);
    b[0] = 0xff;
    b[1] = 0x10;
    KF_CHECK_EQ_INT(kf_st_parse(b, len, &st, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "past the end") != NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    /* header length over the limit */
    b[4] = 1;
    KF_CHECK_EQ_INT(kf_st_parse(b, len, &st, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "limit") != NULL);
    /* truncated data: the buffer is shorter than the offsets claim */
    free(b);
    b = make_st(h, 6, &len);
    KF_CHECK_EQ_INT(kf_st_parse(b, len, &st, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "past the end of the 6-byte data buffer") != NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    free(b);

    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "hole");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "hole");
    expect_bad("{\"t\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "unknown dtype 'Q4'");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "span 8 bytes but f32[3] needs 12");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON");
    expect_bad("[1,2,3,4]", 0, "not an object");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               "shape[0] is not a non-negative integer");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
               "end before begin");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "twice");
    expect_bad("{\"__metadata__\":3}", 0, "__metadata__");
    expect_bad("{} x", 0, "trailing");

    /* kf_st_open names the file and rejects a truncated file */
    char *path = kf_asprintf("%s/short.safetensors", tmpdir);
    KF_CHECK_EQ_INT(kf_write_file(path, "\x10\0\0", 3), 0);
    KF_CHECK_EQ_INT(kf_st_open(path, &st, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "truncated") != NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    KF_CHECK_EQ_INT(kf_write_file(path, "", 0), 0);
    KF_CHECK_EQ_INT(kf_st_open(path, &st, &err), KF_E_FORMAT);
    free(path);
    path = kf_asprintf("%s/missing.safetensors", tmpdir);
    KF_CHECK_EQ_INT(kf_st_open(path, &st, &err), KF_E_IO);
    free(path);
}

static void test_python_written(void) {
    if (access("/usr/bin/python3", X_OK) != 0) KF_SKIP("/usr/bin/python3 is missing");
    char *path = kf_asprintf("%s/py.safetensors", tmpdir);
    char *cmd = kf_asprintf(
        "/usr/bin/python3 - '%s' <<'PYEOF'\n"
        "import json, struct, sys\n"
        "w = struct.pack('<6f', 1.0, -2.0, 3.5, 0.25, 1e-3, 7.0)\n"
        "i = struct.pack('<2q', -5, 1 << 40)\n"
        "h = {'__metadata__': {'format': 'pt'},\n"
        "     'fc.weight': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, len(w)]},\n"
        "     'steps': {'dtype': 'I64', 'shape': [2], 'data_offsets': [len(w), len(w) + len(i)]}}\n"
        "hb = json.dumps(h).encode()\n"
        "hb += b' ' * ((8 - len(hb) %% 8) %% 8)\n"
        "open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hb)) + hb + w + i)\n"
        "PYEOF\n", path);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        free(path);
        KF_SKIP("python3 could not write the file (status %d)", rc);
    }
    kf_safetensors st;
    kf_err err;
    rc = kf_st_open(path, &st, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(st.n_tensors, 2);
        const kf_st_tensor *t = kf_st_find(&st, "fc.weight");
        KF_CHECK(t && t->desc.dtype == KF_F32 && t->desc.shape[0] == 2 && t->desc.shape[1] == 3);
        if (t) {
            const float *f = t->data;
            KF_CHECK_NEAR(f[1], -2.0, 0);
            KF_CHECK_NEAR(f[4], 1e-3, 1e-9);
        }
        t = kf_st_find(&st, "steps");
        KF_CHECK(t && t->desc.dtype == KF_I64);
        if (t) {
            int64_t v[2];
            memcpy(v, t->data, sizeof v);
            KF_CHECK_EQ_INT(v[0], -5);
            KF_CHECK_EQ_INT(v[1], (int64_t)1 << 40);
        }
        kf_st_close(&st);
    }
    free(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kf_test_st_------");
    memset(tmpdir + strlen(tmpdir) - 6, 'X', 6); /* mkdtemp template */
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    KF_RUN(test_roundtrip);
    KF_RUN(test_parse_buffer);
    KF_RUN(test_malformed);
    KF_RUN(test_python_written);
    char *cmd = kf_asprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(cmd);
    return kf_test_report();
}
