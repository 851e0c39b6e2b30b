"""``python -m smpc_bench``: see :mod:`smpc_bench.cli`."""

import sys

from smpc.net.allocator import restart_tuned

restart_tuned()  # malloc settings under which runs reuse freed memory (smpc.net.allocator)

from smpc_bench.cli import main  # noqa: E402 (after the restart: no import work twice)

sys.exit(main())
