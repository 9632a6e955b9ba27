#!/usr/bin/env bash
# The package as users get it: an sdist, a wheel built from that sdist (not from the checkout), both checked for
# their contents, then the wheel installed with its test extras into a fresh virtual environment and the test
# suite run against it from a directory where the source tree cannot be imported.
#
#   bash .ci/wheel.sh          (from anywhere; needs python3 >= 3.10, a C++17 compiler and PyPI)
#
# FUSEDOPTIM_WERROR and the other FUSEDOPTIM_* build variables apply to the wheel build as to `pip install .`.
# The tests run on two pytest-xdist workers (each test is independent; the knobs they turn are per process).
set -euo pipefail
cd "$(dirname "$0")/.."
source=$PWD
# Everything goes to build/wheel-check (ignored by git and left out of the sdist), emptied at the start rather
# than at the end: deleting a virtual environment with torch in it takes minutes on a busy CI machine.
work=$source/build/wheel-check
rm -rf "$work"
mkdir -p "$work"
python=${PYTHON:-python3}

echo "== wheel.sh [$SECONDS s]: sdist, then a wheel from the sdist (python -m build), in $work"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet build
"$work/tools/bin/python" -m build --outdir "$work/dist" "$source"
sdist=$(ls "$work"/dist/fusedoptim-*.tar.gz)
wheel=$(ls "$work"/dist/fusedoptim-*.whl)

echo "== wheel.sh [$SECONDS s]: contents of $(basename "$sdist") and $(basename "$wheel")"
# The sdist must hold every tracked file the build and the tests need (when this is a git checkout) and nothing
# built or local; the wheel the extension and every Python file of the package.
tracked=$(git -C "$source" ls-files -- CMakeLists.txt pyproject.toml README.md cpp python tests benchmarks \
          2>/dev/null || true)
"$work/tools/bin/python" - "$sdist" "$wheel" "$tracked" <<'EOF'
import fnmatch
import sys
import tarfile
import zipfile

sdist, wheel, tracked = sys.argv[1], sys.argv[2], sys.argv[3].split()
with tarfile.open(sdist) as tar:
    names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
required = {"PKG-INFO", "pyproject.toml", "CMakeLists.txt", "README.md", "cpp/include/fusedoptim/parallel.hpp",
            "cpp/src/kernels.cpp", "cpp/src/dispatch.cpp", "cpp/bindings/module.cpp",
            "python/fusedoptim/__init__.py", "tests/conftest.py"}
problems = [f"sdist lacks {name}" for name in sorted(required | set(tracked)) if name not in names]
forbidden = ["build/*", "dist/*", ".venv*", ".ci/*", ".git/*", "*.so", "*/__pycache__/*", "*.pyc",
             ".hypothesis/*", ".pytest_cache/*"]
problems += [f"sdist ships {name}" for name in sorted(names)
             if any(fnmatch.fnmatch(name, pattern) for pattern in forbidden)]

with zipfile.ZipFile(wheel) as zf:
    files = set(zf.namelist())
if not any(fnmatch.fnmatch(name, "fusedoptim/_core.cpython-*.so") for name in files):
    problems.append("wheel lacks the extension fusedoptim/_core.*.so")
package = {name.replace("python/", "", 1) for name in names
           if name.startswith("python/fusedoptim/") and (name.endswith(".py") or name.endswith("py.typed"))}
problems += [f"wheel lacks {name}" for name in sorted(package - files)]
if not any(name.endswith(".dist-info/entry_points.txt") for name in files):
    problems.append("wheel lacks entry_points.txt (the fusedoptim command)")
problems += [f"wheel ships {name}" for name in sorted(files) if name.startswith(("cpp/", "tests/", "python/"))]
if problems:
    sys.exit("\n".join(problems))
print(f"sdist: {len(names)} files, every tracked source, test and build file; wheel: {len(files)} files, "
      f"the extension and {len(package)} package files")
EOF

echo "== wheel.sh [$SECONDS s]: the wheel with its test extras in a fresh virtual environment"
"$python" -m venv "$work/venv"
venv_python=$work/venv/bin/python
"$venv_python" -m pip install --quiet --upgrade pip
# torch for the parity tests: torch==2.13.0 is a local CPU build here (plain `torch` pulls a CUDA one).
"$venv_python" -m pip install --quiet "${wheel}[test,demo]" "torch==2.13.0" pytest-xdist

# The tests (and the benchmarks one of them runs) from the sdist, in a directory without the package's
# sources: `fusedoptim` can only come from the venv's site-packages.
mkdir "$work/run"
tar xzf "$sdist" -C "$work/run" --strip-components=1 --wildcards '*/tests' '*/benchmarks' '*/pyproject.toml'
cd "$work/run"
unset PYTHONPATH
"$venv_python" - <<'EOF'
import os
import sysconfig

import fusedoptim
from fusedoptim import _core

site = os.path.realpath(sysconfig.get_paths()["platlib"])
for module in (fusedoptim, _core):
    path = os.path.realpath(module.__file__)
    assert path.startswith(site + os.sep), f"{module.__name__} imported from {path}, not from {site}"
print(f"fusedoptim and its extension are imported from {site}")
EOF
"$work/venv/bin/fusedoptim" info
"$venv_python" -m pytest -p no:cacheprovider -n 2 -q
echo "== wheel.sh [$SECONDS s]: done"
