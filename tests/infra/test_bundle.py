"""Each function's synthesized code folder plus the layer, with only boto3 beside them, imports
its handler under python3.13 -I (-S): what ships is what was tested."""

from __future__ import annotations

import pytest

from infra.bundling import find_python313
from scripts.bundle import bundles, run_isolated, runtime_dir

PYTHON = find_python313()
pytestmark = pytest.mark.skipif(PYTHON is None, reason="python3.13 (the Lambda runtime's version) is not installed")


def test_every_handler_imports_from_its_bundle(assembly):
    found = bundles(assembly)
    assert len(found) == 5
    runtime = runtime_dir()
    for bundle in found:
        assert not (bundle.layer / "boto3").exists()  # the runtime provides it
        assert not (bundle.code / "tests").exists()
        module, function = bundle.handler.rsplit(".", 1)
        result = run_isolated(
            PYTHON, [bundle.code, bundle.layer, runtime],
            f"import {module} as m; import sys; print(callable(m.{function}), sys.version_info[:2])",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split("\n")[-2] == "True (3, 13)"


def test_the_bundle_cannot_see_the_developer_venv(assembly):
    bundle = bundles(assembly)[0]
    result = run_isolated(PYTHON, [bundle.code, bundle.layer], "import moto")
    assert result.returncode != 0 and "No module named 'moto'" in result.stderr
