"""``python -m numvgg`` runs the command line (see :mod:`numvgg.cli`)."""

import sys

from .cli import main

sys.exit(main())
