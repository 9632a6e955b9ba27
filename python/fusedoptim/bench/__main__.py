"""``python -m fusedoptim.bench``: see :mod:`fusedoptim.bench.cli`."""

import sys

from fusedoptim.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
