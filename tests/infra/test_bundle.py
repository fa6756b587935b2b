"""Each function's synthesized code folder plus its layers, with only boto3 beside them, imports
its handler under python3.13 -I (-S): what ships is what was tested. The default synth has the five
event functions (the shared layer each); the variant (`canvas_instances`) adds the reconciler, whose
second layer (canvasapi and its dependencies) no other function gets."""

from __future__ import annotations

import marshal
import sys
from importlib.metadata import distribution, distributions
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import PROVIDED_BY_RUNTIME, find_python313
from scripts.bundle import bundles, run_isolated, runtime_dir

NOTIFIER = "handlers.notifier.handler"
RECONCILER = "handlers.reconciler.handler"
INGEST = "handlers.ingest.handler"
CHAT = "handlers.chat_webhook.handler"
PYTHON = find_python313()
needs_313 = pytest.mark.skipif(PYTHON is None, reason="python3.13 (the Lambda runtime's version) is not installed")
# What the Lambda Python 3.13 runtime is, for evaluating requirement markers.
LAMBDA_MARKERS = {**default_environment(), "python_version": "3.13", "python_full_version": "3.13.0",
                  "sys_platform": "linux", "platform_system": "Linux", "implementation_name": "cpython",
                  "platform_python_implementation": "CPython", "platform_machine": "x86_64", "extra": ""}


def every_bundle(assembly, variant_assembly):
    """(assembly, bundle): the default's six functions, and the variant's reconciler."""
    default = bundles(assembly)
    assert len(default) == 6 and RECONCILER not in {b.handler for b in default}
    (reconciler,) = [b for b in bundles(variant_assembly) if b.handler == RECONCILER]
    return [(assembly, b) for b in default] + [(variant_assembly, reconciler)]


# Where the clients built at import read botocore's endpoints data from (None: no client built yet).
ENDPOINTS_SOURCE = ("import boto3; s = boto3.DEFAULT_SESSION; "
                    "print(s and s._session.get_component('data_loader').load_data_with_path('endpoints')[1])")


@needs_313
def test_every_handler_imports_from_its_bundle(assembly, variant_assembly):
    """The reconciler too, with both its layers (until functions/handlers/reconciler.py exists, this fails),
    each with what the stack sets (SIS_ROOT_ACCOUNTS, SIS_AUTH, AWS_DATA_PATH, …): the clients built at
    import read the layer's trimmed botocore data, not botocore's own."""
    runtime = runtime_dir()
    for where, bundle in every_bundle(assembly, variant_assembly):
        for layer in bundle.layers:
            assert not (layer / "boto3").exists()  # the runtime provides it
        assert not (bundle.code / "tests").exists()
        module, function = bundle.handler.rsplit(".", 1)
        result = run_isolated(
            PYTHON, [*bundle.paths, runtime],
            f"import {module} as m; import sys; print(callable(m.{function}), sys.version_info[:2])\n"
            + ENDPOINTS_SOURCE,
            env=bundle.environment,
        )
        assert result.returncode == 0, f"{bundle.handler}: {result.stderr[-3000:]}"
        imported, source = result.stdout.split("\n")[-3:-1]
        assert imported == "True (3, 13)", bundle.handler
        if bundle.handler != CHAT:  # the chat function makes its client on its first alert
            assert source == str(bundle.layers[0].parent / "botocore-data" / "endpoints"), bundle.handler


@needs_313
def test_the_ingest_function_verifies_rs256_without_loading_x509(assembly):
    """PyJWT imports cryptography.x509 (certificate keys) as it loads; adapters/auth.py puts it in place
    unloaded. Canvas's RS256 tokens verify, and are refused when they should be, without it; anything
    that does use it still finds the real module."""
    (bundle,) = [b for b in bundles(assembly) if b.handler == INGEST]
    code = """
import json, sys, time
import handlers.ingest
from sis_imports.adapters.auth import JwtAuthenticator, Unauthorized
import jwt
from jwt.algorithms import RSAAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
key = jwt.PyJWK({**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": "k1", "alg": "RS256"})
class Keys:
    def get(self, kid):
        return key
class Request:
    def __init__(self, token):
        self.body, self.query = token.encode(), {}
auth = JwtAuthenticator(Keys(), ["canvas"])
now = int(time.time())
def sign(claims, signer=private):
    return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": "k1"})
print(auth.authenticate(Request(sign({"iss": "canvas", "iat": now, "exp": now + 60, "event": 1})))["event"])
for claims, signer in (({"iss": "canvas", "exp": now - 60}, private), ({"iss": "canvas", "nbf": now + 120}, private),
                       ({"iss": "other"}, private), ({"iss": "canvas"}, other)):
    try:
        auth.authenticate(Request(sign(claims, signer)))
        print("accepted")
    except Unauthorized as exc:
        print(exc)
print("cryptography.x509.base" in sys.modules)
from cryptography import x509
print(callable(x509.load_pem_x509_certificate), "cryptography.x509.base" in sys.modules)
"""
    result = run_isolated(PYTHON, [*bundle.paths, runtime_dir()], code, env=bundle.environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "1", "the JWT has expired", "the JWT is not valid yet (nbf)", "the JWT issuer is not allowed",
        "the JWT signature does not verify",
        "False",  # verified, refused, and x509 never loaded
        "True True",  # loads on its first use
    ]


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
