"""kforge_oracle_json: one-line JSON writing for oracle replies (no torch needed).

Differs from json.dumps only for non-finite floats, which JSON cannot hold: +-inf is written as
1e999 / -1e999 (C's strtod, and so cJSON, reads those back as +-inf); NaN is written as null.
(Graph arguments never rely on this: the capture writes them as "inf"/"-inf"/"nan" strings.)"""

import json
import math


def dumps(obj):
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if obj is None:
        return "null"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, float):
        if math.isnan(obj):
            return "null"
        if math.isinf(obj):
            return "1e999" if obj > 0 else "-1e999"
        return repr(obj)
    return json.dumps(str(obj))
