/* kf_json_num.h: numbers in kforge's JSON formats (graph, program): integers as int64 clamped
 * at its range, floats with the strings "inf", "-inf" and "nan" standing for what JSON has no
 * literal for. */
#ifndef KF_JSON_NUM_H
#define KF_JSON_NUM_H

#include <stdint.h>
#include <cjson/cJSON.h>

/* An integral JSON number as int64 (JSON carries doubles, so the common sentinels
 * 9223372036854775807 and its negative arrive as +-2^63 and are clamped). 0, or -1 when j is
 * not an integral number. */
int kf_json_i64(const cJSON *j, int64_t *out);
/* A JSON number, or one of "inf", "+inf", "Infinity", "-inf", "-Infinity", "nan", "NaN".
 * 0, or -1 (out untouched) otherwise. */
int kf_json_f64(const cJSON *j, double *out);

#endif
