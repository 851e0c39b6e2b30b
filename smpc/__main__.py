"""``python -m smpc``: see :mod:`smpc.cli`."""

import sys

from smpc.net.allocator import restart_tuned

restart_tuned()  # malloc settings under which runs reuse freed memory (smpc.net.allocator)

from smpc.cli import main  # noqa: E402 (after the restart: no import work twice)

sys.exit(main())
