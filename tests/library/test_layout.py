"""The library stands alone: no module of the core package imports the command line (fusedoptim.cli: the demo
and the benchmark harness), and ``import fusedoptim`` loads none of it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fusedoptim

PACKAGE = Path(fusedoptim.__file__).parent
# python -m fusedoptim runs the command line: fusedoptim/__main__.py is its entry, never imported by the library.
ENTRY = PACKAGE / "__main__.py"


def _is_cli(module: str) -> bool:
    return module == "fusedoptim.cli" or module.startswith("fusedoptim.cli.")


def _core_modules() -> list[Path]:
    return sorted(
        path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] != "cli" and path != ENTRY
    )


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, relative imports resolved, including ``importlib.import_module("...")``
    and ``__import__("...")`` with a literal name."""
    package = ".".join(("fusedoptim", *path.relative_to(PACKAGE).parent.parts))
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from fusedoptim import cli` imports the module fusedoptim.cli.
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if function in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.append(node.args[0].value)
    return names


def test_no_core_module_imports_the_command_line():
    modules = _core_modules()
    assert PACKAGE / "optimizer.py" in modules and PACKAGE / "cli" / "__main__.py" not in modules
    offenders = {
        str(path.relative_to(PACKAGE)): name for path in modules for name in _imported_modules(path) if _is_cli(name)
    }
    assert not offenders, f"core modules import the command line (fusedoptim.cli): {offenders}"


def test_the_import_check_sees_every_form_of_import(tmp_path, monkeypatch):
    """The check above is not blind: each form of importing fusedoptim.cli is found."""
    forms = [
        "import fusedoptim.cli.demo",
        "from fusedoptim.cli import demo",
        "from fusedoptim import cli",
        "from .cli.bench import cases",
        "from . import cli",
        "importlib.import_module('fusedoptim.cli.demo')",
    ]
    package = tmp_path / "fusedoptim"
    package.mkdir()
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    for form in forms:
        module = package / "module.py"
        module.write_text(form + "\n")
        assert any(_is_cli(name) for name in _imported_modules(module)), form


def test_importing_fusedoptim_loads_no_command_line_module():
    code = "import sys, fusedoptim; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "fusedoptim.optimizer" in out.stdout.split()
    assert [m for m in out.stdout.split() if _is_cli(m)] == []
