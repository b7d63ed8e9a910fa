"""``python -m service.cli``: the ``promptd`` command (the demo starts its daemon this way)."""

import sys

from service.cli.commands import main

sys.exit(main())
