"""Each function's synthesized code folder plus the layer, with only boto3 beside them, imports
its handler under python3.13 -I (-S): what ships is what was tested."""

from __future__ import annotations

import json
import marshal
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import PROVIDED_BY_RUNTIME, find_python313
from scripts.bundle import LAMBDA_ENV, bundles, run_isolated, runtime_dir

PYTHON = find_python313()
needs_313 = pytest.mark.skipif(PYTHON is None, reason="python3.13 (the Lambda runtime's version) is not installed")
# What the Lambda Python 3.13 runtime is, for evaluating requirement markers.
LAMBDA_MARKERS = {**default_environment(), "python_version": "3.13", "python_full_version": "3.13.0",
                  "sys_platform": "linux", "platform_system": "Linux", "implementation_name": "cpython",
                  "platform_python_implementation": "CPython", "platform_machine": "x86_64", "extra": ""}


def stack_environment(assembly, logical_id):
    """The function's environment as the template sets it; values CloudFormation fills in at deploy
    (a Ref, a GetAtt) keep the placeholders of scripts.bundle.LAMBDA_ENV."""
    (template,) = assembly.glob("*.template.json")
    variables = json.loads(template.read_text())["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
    return {k: v for k, v in variables.items() if isinstance(v, str)}


@needs_313
def test_every_handler_imports_from_its_bundle(assembly, monkeypatch):
    found = bundles(assembly)
    assert len(found) == 5
    runtime = runtime_dir()
    for bundle in found:
        assert not (bundle.layer / "boto3").exists()  # the runtime provides it
        assert not (bundle.code / "tests").exists()
        module, function = bundle.handler.rsplit(".", 1)
        with monkeypatch.context() as patch:  # with what the stack sets (SIS_ROOT_ACCOUNTS, SIS_AUTH, …)
            for key, value in stack_environment(assembly, bundle.name).items():
                patch.setitem(LAMBDA_ENV, key, value)
            result = run_isolated(
                PYTHON, [bundle.code, bundle.layer, runtime],
                f"import {module} as m; import sys; print(callable(m.{function}), sys.version_info[:2])",
            )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split("\n")[-2] == "True (3, 13)"


@needs_313
def test_the_bundle_cannot_see_the_developer_venv(assembly):
    bundle = bundles(assembly)[0]
    result = run_isolated(PYTHON, [bundle.code, bundle.layer], "import moto")
    assert result.returncode != 0 and "No module named 'moto'" in result.stderr


def test_the_layer_holds_every_dependency_of_what_it_holds(assembly):
    """runtime.txt is installed with --no-deps: a missing pin would only show at the first call
    that imports it lazily, so check the metadata, not just the handlers' imports."""
    layer = bundles(assembly)[0].layer
    present = {canonicalize_name(d.metadata["Name"]) for d in distributions(path=[str(layer)])}
    assert {"aws-lambda-powertools", "pydantic-core", "pyjwt", "cryptography"} <= present
    provided = {canonicalize_name(name) for name in PROVIDED_BY_RUNTIME}
    missing = []
    for dist in distributions(path=[str(layer)]):
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(LAMBDA_MARKERS):
                continue  # an extra nobody asked for, or another platform
            name = canonicalize_name(requirement.name)
            if name not in present | provided:
                missing.append(f"{dist.metadata['Name']} needs {text}")
                continue
            if name in present:
                (installed,) = [d for d in distributions(path=[str(layer)]) if canonicalize_name(d.metadata["Name"]) == name]
                if not requirement.specifier.contains(installed.version, prereleases=True):
                    missing.append(f"{dist.metadata['Name']} needs {text}, the layer has {installed.version}")
    assert missing == []
    assert not [name for name in provided if name in present]  # boto3 & co. come from the runtime


def test_byte_code_ships_and_names_lambda_paths(assembly):
    """Compiled ahead (read-only /var/task and /opt), recording Lambda's paths, not this checkout's:
    the same source gives the same bytes on every machine."""
    if sys.version_info[:2] != (3, 13):
        pytest.skip("reading 3.13 byte code needs a 3.13 interpreter")
    bundle = bundles(assembly)[0]
    if not list(bundle.code.rglob("*.pyc")):
        pytest.skip("built without python3.13: no byte code to check")
    for root, prefix in ((bundle.code, "/var/task/"), (bundle.layer, "/opt/python/")):
        compiled = sorted(root.rglob("*.cpython-313.pyc"))
        assert compiled
        for pyc in compiled[:20]:
            data = pyc.read_bytes()
            assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked: no timestamps
            code = marshal.loads(data[16:])
            assert code.co_filename.startswith(prefix), (pyc, code.co_filename)
            assert str(Path.cwd()) not in code.co_filename
