"""``python -m openge.acl SCRIPT [ARGS...]``: run a pyACL script with ``import acl`` resolved to
openge.acl (the script's folder first on sys.path, as ``python SCRIPT`` does)."""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the script named by ``argv[0]`` with the rest as its arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write("usage: python -m openge.acl SCRIPT [ARGS...]\n")
        return 0 if argv else 2
    import openge.acl

    openge.acl.install()
    script = argv[0]
    if not os.path.isfile(script):
        sys.stderr.write(f"openge.acl: no such script: {script}\n")
        return 2
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
