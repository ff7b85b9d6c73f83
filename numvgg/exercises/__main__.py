"""``python -m numvgg.exercises ...`` runs the exercises command (see :mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
