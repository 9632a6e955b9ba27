"""``python -m fusedoptim``: the command line, which lives in :mod:`fusedoptim.cli`."""

import sys

from fusedoptim.cli.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
