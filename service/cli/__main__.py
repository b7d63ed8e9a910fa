"""``python -m service.cli``: the promptd command line (the demo starts its daemon so)."""

import sys

from service.cli import main

sys.exit(main())
