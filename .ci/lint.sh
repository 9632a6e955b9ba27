#!/usr/bin/env bash
# The checks besides the tests, in the activated environment where fusedoptim is installed (.ci/run calls it
# after the tests): ruff (lint, then format), mypy on the package, stubtest of the _core stubs against the built
# extension, and clang-format on cpp/. The Python tools come pinned from the `lint` extra's list; clang-format
# from Debian's packages (installed here when missing and this is root on Debian).
#
#   bash .ci/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet "ruff==0.17.6" "mypy==2.4.1"
if ! command -v clang-format >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq clang-format) >/dev/null
    else
        echo "lint.sh: clang-format is missing (Debian: apt-get install clang-format)" >&2
        exit 1
    fi
fi

echo "== lint.sh: ruff check"
ruff check python tests benchmarks
echo "== lint.sh: ruff format --check"
ruff format --check python tests benchmarks
echo "== lint.sh: mypy (the package, with the _core stubs)"
mypy
echo "== lint.sh: stubtest (python/fusedoptim/_core.pyi against the built extension)"
# From outside the checkout, so that the installed package (and its extension) is what is checked.
(cd /tmp && python -m mypy.stubtest fusedoptim._core --allowlist "$OLDPWD/tests/stubtest_allowlist.txt")
echo "== lint.sh: clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -1) --dry-run -Werror"
git ls-files 'cpp/*.hpp' 'cpp/*.cpp' | xargs clang-format --dry-run -Werror
