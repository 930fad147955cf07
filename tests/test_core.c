/* test_core.c: tests for kf_err, kf_str and kf_dtype. */
#include "core/kf_dtype.h"
#include "core/kf_err.h"
#include "core/kf_str.h"
#include "kf_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_err(void) {
    kf_err e;
    kf_err_clear(&e);
    KF_CHECK_EQ_INT(e.code, KF_OK);
    KF_CHECK_STR(e.msg, "");
    int rc = kf_fail(&e, KF_E_FORMAT, "bad %s at %d\nnext", "thing", 3);
    KF_CHECK_EQ_INT(rc, KF_E_FORMAT);
    KF_CHECK_EQ_INT(e.code, KF_E_FORMAT);
    KF_CHECK_STR(e.msg, "bad thing at 3 next");
    rc = kf_err_prefix(&e, "file %s", "a.json");
    KF_CHECK_EQ_INT(rc, KF_E_FORMAT);
    KF_CHECK_STR(e.msg, "file a.json: bad thing at 3 next");
    KF_CHECK_EQ_INT(kf_fail(NULL, KF_E_IO, "x"), KF_E_IO);
    KF_CHECK_STR(kf_code_name(KF_E_COMPILE), "compile");
    KF_CHECK_STR(kf_code_name(12345), "unknown");
    /* a long prefix truncates without overflowing */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    kf_err_prefix(&e, "%s", big);
    KF_CHECK_EQ_INT(strlen(e.msg), sizeof e.msg - 1);
}

static void test_str(void) {
    kf_str s;
    kf_str_init(&s);
    KF_CHECK_STR(kf_str_cstr(&s), "");
    kf_str_append(&s, "ab");
    kf_str_appendn(&s, "cdef", 2);
    kf_str_appendf(&s, "-%d-%s", 42, "x");
    KF_CHECK_STR(kf_str_cstr(&s), "abcd-42-x");
    KF_CHECK_EQ_INT(s.len, 9);
    for (int i = 0; i < 1000; i++) kf_str_appendf(&s, "%04d", i);
    KF_CHECK_EQ_INT(s.len, 9 + 4000);
    KF_CHECK(memcmp(s.data + s.len - 4, "0999", 4) == 0);
    kf_str_clear(&s);
    KF_CHECK_EQ_INT(s.len, 0);
    KF_CHECK_STR(kf_str_cstr(&s), "");
    kf_str_append(&s, "zz");
    char *t = kf_str_take(&s);
    KF_CHECK_STR(t, "zz");
    KF_CHECK(s.data == NULL && s.len == 0);
    free(t);
    t = kf_str_take(&s);
    KF_CHECK(t != NULL && t[0] == '\0');
    free(t);
    KF_CHECK(kf_strdup(NULL) == NULL);
    t = kf_asprintf("%s=%d", "n", 7);
    KF_CHECK_STR(t, "n=7");
    free(t);
    kf_str_free(&s);
}

static void test_files(void) {
    char dir[] = "/tmp/kf_test_core_------";
    memset(dir + strlen(dir) - 6, 'X', 6); /* mkdtemp template */
    KF_CHECK(mkdtemp(dir) != NULL);
    char *deep = kf_asprintf("%s/a/b/c/", dir);
    KF_CHECK_EQ_INT(kf_mkdirs(deep), 0);
    KF_CHECK_EQ_INT(kf_mkdirs(deep), 0);
    struct stat st;
    KF_CHECK(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
    char *path = kf_asprintf("%s/a/b/c/f.bin", dir);
    const char payload[] = "hello\0world";
    KF_CHECK_EQ_INT(kf_write_file(path, payload, sizeof payload), 0);
    KF_CHECK_EQ_INT(kf_write_file(path, payload, sizeof payload), 0);
    char *data = NULL;
    size_t len = 0;
    KF_CHECK_EQ_INT(kf_read_file(path, &data, &len), 0);
    KF_CHECK_EQ_INT(len, sizeof payload);
    KF_CHECK(data && memcmp(data, payload, len) == 0 && data[len] == '\0');
    free(data);
    KF_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    int entries = 0; /* no temp file is left behind */
    DIR *d = opendir(deep);
    for (struct dirent *de; d && (de = readdir(d));) entries += de->d_name[0] != '.';
    if (d) closedir(d);
    KF_CHECK_EQ_INT(entries, 1);
    KF_CHECK_EQ_INT(kf_mkdirs(path), -ENOTDIR);
    char *missing = kf_asprintf("%s/nope", dir);
    KF_CHECK_EQ_INT(kf_read_file(missing, &data, &len), -ENOENT);
    KF_CHECK(data == NULL);
    char *bad = kf_asprintf("%s/nodir/x", dir);
    KF_CHECK(kf_write_file(bad, "x", 1) < 0);
    char *cmd = kf_asprintf("rm -rf '%s'", dir);
    KF_CHECK_EQ_INT(system(cmd), 0);
    free(cmd); free(bad); free(missing); free(path); free(deep);
}

static void test_dtype(void) {
    kf_dtype d;
    const char *f32s[] = {"f32", "F32", "float32", "torch.float32", "float", "Float"};
    for (size_t i = 0; i < sizeof f32s / sizeof f32s[0]; i++) {
        d = KF_BOOL;
        KF_CHECK_MSG(kf_dtype_parse(f32s[i], &d) == 0 && d == KF_F32, "%s", f32s[i]);
    }
    KF_CHECK(kf_dtype_parse("half", &d) == 0 && d == KF_F16);
    KF_CHECK(kf_dtype_parse("bf16", &d) == 0 && d == KF_BF16);
    KF_CHECK(kf_dtype_parse("BF16", &d) == 0 && d == KF_BF16);
    KF_CHECK(kf_dtype_parse("torch.bfloat16", &d) == 0 && d == KF_BF16);
    KF_CHECK(kf_dtype_parse("int64", &d) == 0 && d == KF_I64);
    KF_CHECK(kf_dtype_parse("long", &d) == 0 && d == KF_I64);
    KF_CHECK(kf_dtype_parse("torch.int32", &d) == 0 && d == KF_I32);
    KF_CHECK(kf_dtype_parse("bool", &d) == 0 && d == KF_BOOL);
    KF_CHECK(kf_dtype_parse("BOOL", &d) == 0 && d == KF_BOOL);
    KF_CHECK(kf_dtype_parse("uint8", &d) == 0 && d == KF_U8);
    KF_CHECK(kf_dtype_parse("U8", &d) == 0 && d == KF_U8);
    KF_CHECK(kf_dtype_parse("torch.float64", &d) == 0 && d == KF_F64);
    KF_CHECK(kf_dtype_parse("complex64", &d) == -1);
    KF_CHECK(kf_dtype_parse("", &d) == -1);
    KF_CHECK(kf_dtype_parse(NULL, &d) == -1);
    for (int i = 0; i < KF_DTYPE_COUNT; i++) {
        KF_CHECK(kf_dtype_parse(kf_dtype_name((kf_dtype)i), &d) == 0 && d == (kf_dtype)i);
        KF_CHECK(kf_dtype_parse(kf_dtype_safetensors((kf_dtype)i), &d) == 0 && d == (kf_dtype)i);
        KF_CHECK(kf_dtype_size((kf_dtype)i) > 0);
    }
    KF_CHECK_EQ_INT(kf_dtype_size(KF_F32), 4);
    KF_CHECK_EQ_INT(kf_dtype_size(KF_BF16), 2);
    KF_CHECK_EQ_INT(kf_dtype_size(KF_I64), 8);
    KF_CHECK_EQ_INT(kf_dtype_size(KF_BOOL), 1);
    KF_CHECK_STR(kf_dtype_ctype(KF_F32), "float");
    KF_CHECK_STR(kf_dtype_ctype(KF_BOOL), "uint8_t");
    KF_CHECK_STR(kf_dtype_safetensors(KF_I64), "I64");
    KF_CHECK(kf_dtype_is_float(KF_BF16) && !kf_dtype_is_float(KF_I32));
}

static void test_tdesc(void) {
    kf_tdesc t = {.dtype = KF_F32, .ndim = 3, .shape = {2, 3, 4}};
    kf_tdesc_set_contiguous(&t);
    KF_CHECK_EQ_INT(t.strides[0], 12);
    KF_CHECK_EQ_INT(t.strides[1], 4);
    KF_CHECK_EQ_INT(t.strides[2], 1);
    KF_CHECK(kf_tdesc_is_contiguous(&t));
    KF_CHECK_EQ_INT(kf_tdesc_numel(&t), 24);
    KF_CHECK_EQ_INT(kf_tdesc_nbytes(&t), 96);
    char buf[64];
    KF_CHECK_STR(kf_tdesc_format(&t, buf, sizeof buf), "f32[2, 3, 4]");
    kf_tdesc u = t;
    u.strides[1] = 1;
    u.strides[2] = 3;
    KF_CHECK(!kf_tdesc_is_contiguous(&u));
    KF_CHECK(kf_tdesc_same_shape(&t, &u));
    u.shape[2] = 5;
    KF_CHECK(!kf_tdesc_same_shape(&t, &u));
    kf_tdesc s = {.dtype = KF_I64, .ndim = 0};
    KF_CHECK_EQ_INT(kf_tdesc_numel(&s), 1);
    KF_CHECK(kf_tdesc_is_contiguous(&s));
    KF_CHECK_STR(kf_tdesc_format(&s, buf, sizeof buf), "i64[]");
    KF_CHECK_STR(kf_tdesc_format(&t, buf, 6), "f32[2");
}

int main(void) {
    KF_RUN(test_err);
    KF_RUN(test_str);
    KF_RUN(test_files);
    KF_RUN(test_dtype);
    KF_RUN(test_tdesc);
    return kf_test_report();
}
