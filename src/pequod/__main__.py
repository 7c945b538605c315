"""``python -m pequod`` runs the command-line interface."""

import sys

from pequod.cli.main import main

sys.exit(main())
