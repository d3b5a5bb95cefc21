"""openge: the Ascend GE workflow (build, compile, save .om, load, execute) on any CPU."""

from openge.errors import GeError, Status
from openge.version import OM_FORMAT_VERSION, __version__

__all__ = ["OM_FORMAT_VERSION", "GeError", "Status", "__version__"]
