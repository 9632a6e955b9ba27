"""``python -m fusedoptim.cli.bench``: see :mod:`fusedoptim.cli.bench.cli`."""

import sys

from fusedoptim.cli.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
