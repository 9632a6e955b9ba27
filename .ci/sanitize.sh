#!/usr/bin/env bash
# The whole test suite against a build of the extension instrumented with AddressSanitizer and
# UndefinedBehaviorSanitizer (CMake option FUSEDOPTIM_SANITIZE): any out-of-bounds access, use after free or
# undefined behaviour in the C++ stops the run with a report.
#
#   bash .ci/sanitize.sh        (GCC; the venv and build directory stay in build/ for quicker reruns)
#
# The build goes to build/sanitize (not build/{wheel_tag}, the normal build's) and is installed, with the test
# extras and torch, into its own virtual environment: build/sanitize-venv, or $SANITIZE_VENV (.ci/run, whose
# last step this is, passes its own environment, which then holds the instrumented build). Python itself is
# not instrumented, so the ASan runtime is preloaded into it. Only the SIMD levels this CPU runs are built: the
# others could not be exercised here.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SANITIZE_VENV:-build/sanitize-venv}
python=${PYTHON:-python3}
levels=baseline
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
    levels="$levels;avx2"
fi
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo &&
   grep -qw avx512dq /proc/cpuinfo; then
    levels="$levels;avx512"
fi
if [ "$(uname -m)" != x86_64 ]; then levels=baseline; fi

echo "== sanitize.sh [$SECONDS s]: build with -fsanitize=address,undefined (SIMD levels $levels) into $venv"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
# torch for the parity tests: torch==2.13.0 is a local CPU build here (plain `torch` pulls a CUDA one).
FUSEDOPTIM_SANITIZE=ON "$venv/bin/python" -m pip install --quiet --config-settings=build-dir=build/sanitize \
    --config-settings="cmake.define.FUSEDOPTIM_SIMD_LEVELS=$levels" ".[test,demo]" "torch==2.13.0" pytest-xdist

# The runtimes of the compiler that built the extension. libasan must come first in the process; libstdc++ is
# preloaded too because Python does not link it, and ASan's interceptor of C++ `throw` must find the real one
# at start-up (otherwise the first exception the bindings raise aborts the process).
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build/sanitize/CMakeCache.txt)
libasan=$("$cxx" -print-file-name=libasan.so)
libstdcxx=$("$cxx" -print-file-name=libstdc++.so)
if [ ! -e "$libasan" ] || [ ! -e "$libstdcxx" ]; then
    echo "sanitize.sh: $cxx has no libasan.so / libstdc++.so (the script expects GCC)" >&2
    exit 1
fi
export LD_PRELOAD="$libasan $libstdcxx"
# detect_leaks=0: CPython does not free its modules, interned strings and caches at exit, so LeakSanitizer
# would report thousands of blocks that are not ours; leaks of ours are what the RSS and tracemalloc tests in
# tests/library/test_reliability.py look for, in the plain runs. Everything else ASan checks stays on, and stops the
# process at the first error.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Python's allocations through malloc, so ASan sees their bounds too (not pymalloc's pools).
export PYTHONMALLOC=malloc
# tests/library/test_reliability.py checks that this run's extension is the instrumented one.
export FUSEDOPTIM_EXPECT_SANITIZE=1

# Deselected here only, with the reason; the README and wheel runs run them.
deselect=(
    tests/library/test_reliability.py::test_rss_is_flat_over_100k_adam_steps
    tests/library/test_reliability.py::test_rss_is_flat_over_guarded_clipped_lamb_steps_and_norms
    tests/library/test_reliability.py::test_failed_calls_leak_neither_memory_nor_references
)
echo "== sanitize.sh [$SECONDS s]: deselected: ${deselect[*]}"
echo "   (they bound the growth of the process's RSS, which under ASan holds its quarantine of freed memory,"
echo "   up to 256 MB, and its shadow memory)"
args=()
for test in "${deselect[@]}"; do args+=(--deselect "$test"); done

echo "== sanitize.sh [$SECONDS s]: the test suite under ASan and UBSan (LD_PRELOAD=$LD_PRELOAD)"
"$venv/bin/python" -m fusedoptim info
"$venv/bin/python" -m pytest -p no:cacheprovider -n 2 -q "${args[@]}"
echo "== sanitize.sh [$SECONDS s]: done"
