"""Version numbers: the package's and the .om format's (OM_FORMAT.md §6)."""

__version__ = "0.1.0"
#: Producer string written into every .om header and ModelDef.
PRODUCER = f"openge-{__version__}"
#: The .om format this openge writes and the newest it reads: (MAJOR, MINOR). 1.1 added the
#: gear records (TASK_INFO GearTable, MODEL_INOUT_INFO DYNAMIC_*, per-gear ModelDef graphs).
OM_FORMAT_VERSION = (1, 1)
