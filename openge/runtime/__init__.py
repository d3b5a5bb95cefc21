"""The runtime: Model loads a compiled model (from .om bytes or a file) and executes it."""

from openge.om.limits import LoadLimits
from openge.om.plan import IODesc
from openge.runtime.compat import Compatibility, check_compatibility, query_size
from openge.runtime.model import Model
from openge.runtime.threads import get_num_threads, set_num_threads
from openge.runtime.variables import VariableStore

__all__ = [
    "Compatibility",
    "IODesc",
    "LoadLimits",
    "Model",
    "VariableStore",
    "check_compatibility",
    "get_num_threads",
    "query_size",
    "set_num_threads",
]
