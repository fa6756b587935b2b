"""Each function's synthesized code folder plus its layers, with only boto3 beside them, imports
its handler under python3.13 -I (-S): what ships is what was tested. The default synth has the five
event functions (the shared layer each); the variant (`canvas_instances`) adds the reconciler, whose
second layer (canvasapi and its dependencies) no other function gets."""

from __future__ import annotations

import json
import marshal
import sys
from importlib.metadata import distribution, distributions
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import PROVIDED_BY_RUNTIME, find_python313
from scripts.bundle import LAMBDA_ENV, bundles, run_isolated, runtime_dir

NOTIFIER = "handlers.notifier.handler"
RECONCILER = "handlers.reconciler.handler"
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


def every_bundle(assembly, variant_assembly):
    """(assembly, bundle): the default's six functions, and the variant's reconciler."""
    default = bundles(assembly)
    assert len(default) == 6 and RECONCILER not in {b.handler for b in default}
    (reconciler,) = [b for b in bundles(variant_assembly) if b.handler == RECONCILER]
    return [(assembly, b) for b in default] + [(variant_assembly, reconciler)]


@needs_313
def test_every_handler_imports_from_its_bundle(assembly, variant_assembly, monkeypatch):
    """The reconciler too, with both its layers (until functions/handlers/reconciler.py exists, this fails)."""
    runtime = runtime_dir()
    for where, bundle in every_bundle(assembly, variant_assembly):
        for layer in bundle.layers:
            assert not (layer / "boto3").exists()  # the runtime provides it
        assert not (bundle.code / "tests").exists()
        module, function = bundle.handler.rsplit(".", 1)
        with monkeypatch.context() as patch:  # with what the stack sets (SIS_ROOT_ACCOUNTS, SIS_AUTH, …)
            for key, value in stack_environment(where, bundle.name).items():
                patch.setitem(LAMBDA_ENV, key, value)
            result = run_isolated(
                PYTHON, [*bundle.paths, runtime],
                f"import {module} as m; import sys; print(callable(m.{function}), sys.version_info[:2])",
            )
        assert result.returncode == 0, f"{bundle.handler}: {result.stderr[-3000:]}"
        assert result.stdout.split("\n")[-2] == "True (3, 13)", bundle.handler


def test_canvasapi_ships_in_the_reconcilers_own_layer_and_nowhere_else(assembly, variant_assembly):
    """The ingest path (and every other function) cannot load canvasapi: it is not in their bundles."""
    for where in (assembly, variant_assembly):
        for bundle in bundles(where):
            holding = [layer for layer in bundle.paths if (layer / "canvasapi").exists()]
            # The notifier reads an end's details with the reconciler's client, when instances exist: it
            # has the layer then, and imports canvasapi only on the first alert that asks Canvas.
            if bundle.handler == RECONCILER or (bundle.handler == NOTIFIER and where == variant_assembly):
                assert len(bundle.layers) == 2 and holding == [bundle.layers[1]]
                assert (bundle.layers[1] / "requests").is_dir() and not (bundle.layers[1] / "pydantic_core").exists()
            else:
                assert len(bundle.layers) == 1 and holding == [], bundle.handler


def test_a_functions_layers_do_not_overlap(variant_assembly):
    """Lambda unpacks every layer into the same /opt/python: a name in two would be overwritten by the later."""
    (reconciler,) = [b for b in bundles(variant_assembly) if b.handler == RECONCILER]
    shared, own = ({p.name for p in layer.iterdir() if p.name != "__pycache__"} for layer in reconciler.layers)
    assert shared and own and shared & own == set()


@needs_313
def test_the_bundle_cannot_see_the_developer_venv(assembly, variant_assembly):
    for _, bundle in every_bundle(assembly, variant_assembly)[::6]:  # the first event function, the reconciler
        result = run_isolated(PYTHON, bundle.paths, "import moto")
        assert result.returncode != 0 and "No module named 'moto'" in result.stderr


def test_each_layer_holds_every_dependency_of_what_it_holds(assembly, variant_assembly):
    """Each requirements file is installed with --no-deps: a missing pin would only show at the first
    call that imports it lazily, so check the metadata, not just the handlers' imports. Both layers:
    each function's layers together, and the runtime's boto3 with the copies the reconciler's layer
    puts before it (python-dateutil, six, urllib3: in Lambda the layer's shadow the runtime's)."""
    checked = set()
    for _, bundle in every_bundle(assembly, variant_assembly):
        if bundle.layers in checked:
            continue
        checked.add(bundle.layers)
        path = [str(layer) for layer in bundle.layers]
        installed = {canonicalize_name(d.metadata["Name"]): d for d in distributions(path=path)}
        present = set(installed)
        expected = {"aws-lambda-powertools", "pydantic-core", "pyjwt", "cryptography"}
        if bundle.handler == RECONCILER:
            expected |= {"canvasapi", "requests", "arrow", "urllib3", "python-dateutil"}
        assert expected <= present, bundle.handler
        provided = {canonicalize_name(name) for name in PROVIDED_BY_RUNTIME}
        missing = []
        # What the layers hold, and the runtime's own packages (boto3 & co., the versions the tests pin).
        dependents = [*installed.values(), *(distribution(name) for name in PROVIDED_BY_RUNTIME)]
        for dist in dependents:
            for text in dist.requires or []:
                requirement = Requirement(text)
                if requirement.marker and not requirement.marker.evaluate(LAMBDA_MARKERS):
                    continue  # an extra nobody asked for, or another platform
                name = canonicalize_name(requirement.name)
                if canonicalize_name(dist.metadata["Name"]) in provided and name not in present:
                    continue  # the runtime brings its own copy
                if name not in present | provided:
                    missing.append(f"{dist.metadata['Name']} needs {text}")
                    continue
                if name in present and not requirement.specifier.contains(installed[name].version, prereleases=True):
                    missing.append(f"{dist.metadata['Name']} needs {text}, the layer has {installed[name].version}")
        assert missing == [], bundle.handler
        assert not [name for name in provided if name in present]  # boto3 & co. come from the runtime


def test_byte_code_ships_and_names_lambda_paths(variant_assembly):
    """Compiled ahead (read-only /var/task and /opt), recording Lambda's paths, not this checkout's:
    the same source gives the same bytes on every machine."""
    if sys.version_info[:2] != (3, 13):
        pytest.skip("reading 3.13 byte code needs a 3.13 interpreter")
    (reconciler,) = [b for b in bundles(variant_assembly) if b.handler == RECONCILER]
    if not list(reconciler.code.rglob("*.pyc")):
        pytest.skip("built without python3.13: no byte code to check")
    for root, prefix in ((reconciler.code, "/var/task/"), *((layer, "/opt/python/") for layer in reconciler.layers)):
        compiled = sorted(root.rglob("*.cpython-313.pyc"))
        assert compiled
        for pyc in compiled[:20]:
            data = pyc.read_bytes()
            assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked: no timestamps
            code = marshal.loads(data[16:])
            assert code.co_filename.startswith(prefix), (pyc, code.co_filename)
            assert str(Path.cwd()) not in code.co_filename
