/* kf_json_num.c: see kf_json_num.h. */
#include "ir/kf_json_num.h"

#include <math.h>
#include <string.h>

int kf_json_i64(const cJSON *j, int64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!isfinite(d) || floor(d) != d) return -1;
    if (d >= 9223372036854775807.0) *out = INT64_MAX;
    else if (d <= -9223372036854775808.0) *out = INT64_MIN;
    else *out = (int64_t)d;
    return 0;
}

int kf_json_f64(const cJSON *j, double *out) {
    if (cJSON_IsNumber(j)) {
        *out = j->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(j) || !j->valuestring) return -1;
    const char *s = j->valuestring;
    if (!strcmp(s, "inf") || !strcmp(s, "+inf") || !strcmp(s, "Infinity")) *out = INFINITY;
    else if (!strcmp(s, "-inf") || !strcmp(s, "-Infinity")) *out = -INFINITY;
    else if (!strcmp(s, "nan") || !strcmp(s, "NaN")) *out = NAN;
    else return -1;
    return 0;
}
