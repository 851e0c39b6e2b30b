"""``python -m smpc``: see :mod:`smpc.cli`."""

import sys

from smpc.cli import main

sys.exit(main())
