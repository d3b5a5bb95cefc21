"""GeError and the GE / ACL status codes (bottom layer: imported by every package)."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """GE / ACL status codes openge raises (values as in GE's public headers)."""

    SUCCESS = 0
    FAILED = 0xFFFFFFFF
    ACL_ERROR_INVALID_PARAM = 100000
    ACL_ERROR_GE_PARAM_INVALID = 145000
    ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID = 145002
    ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID = 145006
    ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID = 145012
    ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID = 145013
    ACL_ERROR_GE_SHAPE_INVALID = 145021
    ACL_ERROR_GE_DATATYPE_INVALID = 145022
    # ACL's own "feature not supported" code; GE has no distinct value for it.
    ACL_ERROR_FEATURE_UNSUPPORTED = 207000
    ACL_ERROR_GE_INTERNAL_ERROR = 545000
    ACL_ERROR_GE_LOAD_MODEL = 545001
    # GE's allocation failure: a dynamic-shape run whose memory would pass the limit.
    ACL_ERROR_GE_MEMORY_ALLOCATION = 245000
    GE_CLI_GE_NOT_INITIALIZED = 1343229963
    GE_GRAPH_GRAPH_NOT_EXIST = 1343242242


SUCCESS = Status.SUCCESS
FAILED = Status.FAILED
PARAM_INVALID = Status.ACL_ERROR_GE_PARAM_INVALID
MODEL_PATH_INVALID = Status.ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID
MODEL_DATA_SIZE_INVALID = Status.ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID
SHAPE_INVALID = Status.ACL_ERROR_GE_SHAPE_INVALID
ACL_INVALID_PARAM = Status.ACL_ERROR_INVALID_PARAM
DYNAMIC_INPUT_LENGTH_INVALID = Status.ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID
DYNAMIC_BATCH_SIZE_INVALID = Status.ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID
DATATYPE_INVALID = Status.ACL_ERROR_GE_DATATYPE_INVALID
UNSUPPORTED = Status.ACL_ERROR_FEATURE_UNSUPPORTED
INTERNAL_ERROR = Status.ACL_ERROR_GE_INTERNAL_ERROR
LOAD_MODEL = Status.ACL_ERROR_GE_LOAD_MODEL
MEMORY_ALLOCATION = Status.ACL_ERROR_GE_MEMORY_ALLOCATION
GE_CLI_GE_NOT_INITIALIZED = Status.GE_CLI_GE_NOT_INITIALIZED
GE_GRAPH_GRAPH_NOT_EXIST = Status.GE_GRAPH_GRAPH_NOT_EXIST


class GeError(Exception):
    """The one exception openge raises for bad input or a failed operation.

    Attributes:
        code: the GE / ACL status value (int).
        name: the status name, e.g. ``"ACL_ERROR_GE_PARAM_INVALID"``.
    """

    def __init__(self, code: int, message: str) -> None:
        try:
            status = Status(code)
            name = status.name
        except ValueError:
            name = f"STATUS_{code}"
        super().__init__(f"[{name}] {message}")
        self.code = int(code)
        self.name = name
        self.message = message

    def __reduce__(self):  # keeps GeError picklable for multiprocessing callers
        return (type(self), (self.code, self.message))
