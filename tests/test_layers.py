"""Who may import whom, checked on the real import graph (every import statement, lazy ones included):

- core (sis_imports/core): the standard library and core only (pydantic_core in core/events.py, the
  event validator); no AWS SDK, no HTTP client, no environment reads;
- adapters: not use cases, not wiring, not handlers;
- use cases: not wiring, not handlers;
- handlers: only wiring, use cases, Powertools and the standard library.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
# Standard-library modules that are an edge all the same: the core does no HTTP and no sockets.
NOT_IN_CORE = {"urllib.request", "urllib.error", "http", "socket", "ssl", "subprocess"}
THIRD_PARTY_IN_CORE = {"sis_imports.core.events": {"pydantic_core"}}


def module_sources(root: Path = FUNCTIONS) -> dict[str, str]:
    """Dotted module name -> source, for every module under `root` (a package's is its __init__)."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text()
    return sources


def imports_of(name: str, source: str, modules: set[str]) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the module, relative ones resolved; `from p import m`
    names the module p.m when there is one."""
    package = name if any(m.startswith(name + ".") for m in modules) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.append((node.lineno, child if child in modules else target))
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "handlers":
        return "handlers"
    if parts[0] == "sis_imports" and len(parts) > 1:
        return {"core": "core", "adapters": "adapters", "usecases": "usecases", "wiring": "wiring"}.get(parts[1], "other")
    return "other"


def allowed(importer: str, imported: str) -> str | None:
    """None when `importer` may import `imported`, else why not."""
    top = imported.split(".")[0]
    target = layer(imported)
    where = layer(importer)
    if where == "core":
        if target == "core" or imported == "sis_imports":
            return None
        if top in STDLIB:
            hit = [m for m in NOT_IN_CORE if imported == m or imported.startswith(m + ".")]
            return f"the core does no I/O ({imported})" if hit else None
        if top in THIRD_PARTY_IN_CORE.get(importer, set()):
            return None
        return f"the core imports only itself and the standard library, not {imported}"
    if where == "adapters" and target in ("usecases", "wiring", "handlers"):
        return f"an adapter does not import {target} ({imported})"
    if where == "usecases" and target in ("wiring", "handlers"):
        return f"a use case gets its adapters passed in; it does not import {target} ({imported})"
    if where == "handlers":
        if target in ("wiring", "usecases") or top in STDLIB or top == "aws_lambda_powertools" \
                or imported == "sis_imports":
            return None
        return f"a handler imports only wiring, use cases and Powertools, not {imported}"
    return None


def environment_reads(source: str) -> list[int]:
    """Lines that read the environment (os.environ, os.getenv, os.putenv)."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
            and node.attr in ("environ", "getenv", "putenv", "environb")]


def violations(sources: dict[str, str]) -> list[str]:
    modules = set(sources)
    found = []
    for name, source in sorted(sources.items()):
        for line, imported in imports_of(name, source, modules):
            why = allowed(name, imported)
            if why:
                found.append(f"{name}:{line}: {why}")
        if layer(name) == "core":
            found += [f"{name}:{line}: the core reads no environment" for line in environment_reads(source)]
    return found


def test_the_real_code_keeps_the_layers():
    sources = module_sources()
    assert {layer(m) for m in sources} >= {"core", "adapters", "usecases", "wiring", "handlers"}
    assert violations(sources) == []


def test_every_handler_module_is_short():
    """A handler parses its trigger, calls its use case and answers: a few lines."""
    long = {p.name: n for p in (FUNCTIONS / "handlers").glob("*.py") if (n := len(p.read_text().splitlines())) >= 60}
    assert long == {}


def test_no_function_module_is_over_400_lines():
    roots = [FUNCTIONS, FUNCTIONS.parent / "ops", FUNCTIONS.parent / "scripts"]
    long = {str(p): n for root in roots for p in root.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


GOOD = {
    "sis_imports": "",
    "sis_imports.core": "",
    "sis_imports.core.states": "import enum\n",
    "sis_imports.core.events": "import json\nfrom pydantic_core import SchemaValidator\nfrom .states import X\n",
    "sis_imports.adapters": "",
    "sis_imports.adapters.store": "import boto3\nfrom ..core.states import X\n",
    "sis_imports.usecases": "",
    "sis_imports.usecases.ingest": "from ..adapters.store import S\nfrom ..core import states\n",
    "sis_imports.wiring": "import os\nfrom .usecases.ingest import I\nfrom .adapters.store import S\n",
    "handlers": "",
    "handlers.ingest": "import os\nfrom aws_lambda_powertools.logging import x\nfrom sis_imports import wiring\n"
                       "from sis_imports.usecases.ingest import I\n",
}


def test_the_checker_passes_a_graph_that_keeps_the_rule():
    assert violations(GOOD) == []


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("sis_imports.core.states", "import boto3\n", "sis_imports.core.states:2: the core imports only itself"),
    ("sis_imports.core.states", "def f():\n    from botocore.config import Config\n", "sis_imports.core.states:3:"),
    ("sis_imports.core.states", "from ..adapters.store import S\n", "not sis_imports.adapters.store"),
    ("sis_imports.core.states", "from sis_imports.usecases import ingest\n", "not sis_imports.usecases.ingest"),
    ("sis_imports.core.states", "import urllib.request\n", "the core does no I/O (urllib.request)"),
    ("sis_imports.core.states", "from pydantic_core import SchemaValidator\n", "not pydantic_core"),
    ("sis_imports.core.states", "import os\nX = os.environ.get('A')\n", "sis_imports.core.states:3: the core reads no"),
    ("sis_imports.adapters.store", "from ..usecases.ingest import I\n", "an adapter does not import usecases"),
    ("sis_imports.adapters.store", "from .. import wiring\n", "an adapter does not import wiring"),
    ("sis_imports.usecases.ingest", "from sis_imports import wiring\n", "it does not import wiring"),
    ("handlers.ingest", "from sis_imports.adapters.store import S\n", "a handler imports only wiring"),
    ("handlers.ingest", "from sis_imports.core.events import InvalidEvent\n", "not sis_imports.core.events"),
    ("handlers.ingest", "import jwt\n", "not jwt"),
])
def test_the_checker_fails_each_kind_of_broken_rule(module, source, expected):
    broken = {**GOOD, module: GOOD[module] + source}
    found = violations(broken)
    assert len(found) == 1 and expected in found[0], found


def test_a_module_added_to_the_real_core_with_an_aws_import_fails(tmp_path):
    """As the build would see it: a file in the core's folder that imports boto3."""
    import shutil

    copy = tmp_path / "functions"
    shutil.copytree(FUNCTIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "sis_imports" / "core" / "clock.py").write_text("import boto3\n")
    assert violations(module_sources(copy)) == [
        "sis_imports.core.clock:1: the core imports only itself and the standard library, not boto3"]
