"""ACL return codes and enums used inside openge.acl (never exported: pyACL has no constants)."""

from __future__ import annotations

SUCCESS = 0
INVALID_PARAM = 100000
UNINITIALIZE = 100001
REPEAT_INITIALIZE = 100002
INVALID_FILE = 100003
PARSE_FILE = 100006
INVALID_MODEL_ID = 100011
MODEL_INPUT_NOT_MATCH = 100017
MODEL_OUTPUT_NOT_MATCH = 100018
MODEL_NOT_DYNAMIC = 100019
REPEAT_FINALIZE = 100037
BAD_ALLOC = 200000
API_NOT_SUPPORT = 200001
INVALID_DEVICE = 200002
INTERNAL_ERROR = 500000
GE_FAILURE = 500002
#: aclrtLaunchCallback on a stream no thread subscribed to (rt_error_codes.h).
RT_STREAM_NO_CB_REG = 107015
#: aclrtProcessReport found no callback within its timeout (rt_error_codes.h).
RT_REPORT_TIMEOUT = 507012

#: GE status codes are passed through by ACL unchanged.
GE_CODE_RANGE = range(145000, 546000)

RUN_MODE_HOST = 1
SOC_NAME = "openge_CPU"
VERSION = (1, 0, 0)


def from_error(code: int) -> int:
    """The ACL return value for a GeError code: GE and ACL codes pass through, others map to
    ACL_ERROR_GE_FAILURE."""
    if code in GE_CODE_RANGE or 100000 <= code < 600000:
        return int(code)
    return GE_FAILURE
