"""``python -m openge`` runs the openge command."""

import sys

from openge.cli.main import main

sys.exit(main())
