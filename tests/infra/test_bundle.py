"""Each function's synthesized code folder plus its layers, with only boto3 beside them, imports
its handler under python3.13 -I (-S): what ships is what was tested. The default synth has the five
event functions (the shared layer each); the variant (`canvas_instances`) adds the reconciler, whose
second layer (canvasapi and its dependencies) no other function gets. The variant chose x86_64;
the default and the bare stack (the reconciler as `make cost` has it) are arm64, whose layers' native
code this machine may not load: those are imported through their twins (Bundle.importable), which a
test here holds to the same files as what ships, the native code aside."""

from __future__ import annotations

import marshal
import re
import sys
from importlib.metadata import distribution, distributions
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import PROVIDED_BY_RUNTIME, build_twin, find_python313, host_architecture, layer_pins
from scripts.bundle import bundles, run_isolated, runtime_dir

NOTIFIER = "handlers.notifier.handler"
RECONCILER = "handlers.reconciler.handler"
INGEST = "handlers.ingest.handler"
CHAT = "handlers.chat_webhook.handler"
PYTHON = find_python313()
needs_313 = pytest.mark.skipif(PYTHON is None, reason="python3.13 (the Lambda runtime's version) is not installed")
# The machine Lambda reports for each architecture, for `platform_machine` markers.
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
# ELF e_machine of a shared object built for each architecture.
ELF_MACHINES = {"x86_64": 62, "arm64": 183}


def lambda_markers(architecture: str) -> dict[str, str]:
    """What the Lambda Python 3.13 runtime is, for evaluating requirement markers."""
    return {**default_environment(), "python_version": "3.13", "python_full_version": "3.13.0",
            "sys_platform": "linux", "platform_system": "Linux", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "platform_machine": MACHINES[architecture], "extra": ""}


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


def every_bundle(assembly, variant_assembly, bare_assembly):
    """(assembly, bundle): the default's six functions, the variant's reconciler (x86_64), the bare
    stack's (arm64, as it deploys by default)."""
    default = bundles(assembly)
    assert len(default) == 6 and RECONCILER not in {b.handler for b in default}
    found = [(assembly, b) for b in default]
    for where in (variant_assembly, bare_assembly):
        (reconciler,) = [b for b in bundles(where) if b.handler == RECONCILER]
        found.append((where, reconciler))
    assert {b.architecture for _, b in found} == {"arm64", "x86_64"}
    return found


@pytest.fixture(scope="module")
def bare_assembly(bare_synth):
    return bare_synth.assembly


# Where the clients built at import read botocore's endpoints data from (None: no client built yet).
ENDPOINTS_SOURCE = ("import boto3; s = boto3.DEFAULT_SESSION; "
                    "print(s and s._session.get_component('data_loader').load_data_with_path('endpoints')[1])")


@needs_313
def test_every_handler_imports_from_its_bundle(assembly, variant_assembly, bare_assembly):
    """The reconciler too, with both its layers (until functions/handlers/reconciler.py exists, this fails),
    each with what the stack sets (SIS_ROOT_ACCOUNTS, SIS_AUTH, AWS_DATA_PATH, …): the clients built at
    import read the layer's trimmed botocore data, not botocore's own."""
    runtime = runtime_dir()
    for where, shipped in every_bundle(assembly, variant_assembly, bare_assembly):
        bundle = shipped.importable()
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
    (bundle,) = [b.importable() for b in bundles(assembly) if b.handler == INGEST]
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
def test_the_bundle_cannot_see_the_developer_venv(assembly, variant_assembly, bare_assembly):
    found = every_bundle(assembly, variant_assembly, bare_assembly)
    for _, bundle in (found[0], *found[6:]):  # the first event function, the two reconcilers
        result = run_isolated(PYTHON, bundle.importable().paths, "import moto")
        assert result.returncode != 0 and "No module named 'moto'" in result.stderr


def test_each_layer_holds_every_dependency_of_what_it_holds(assembly, variant_assembly, bare_assembly):
    """Each requirements file is installed with --no-deps: a missing pin would only show at the first
    call that imports it lazily, so check the metadata, not just the handlers' imports. Both layers:
    each function's layers together, and the runtime's boto3 with the copies the reconciler's layer
    puts before it (python-dateutil, six, urllib3: in Lambda the layer's shadow the runtime's)."""
    checked = set()
    for _, bundle in every_bundle(assembly, variant_assembly, bare_assembly):
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
                if requirement.marker and not requirement.marker.evaluate(lambda_markers(bundle.architecture)):
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


def test_byte_code_ships_and_names_lambda_paths(bare_assembly):
    """Compiled ahead (read-only /var/task and /opt), recording Lambda's paths, not this checkout's:
    the same source gives the same bytes on every machine."""
    if sys.version_info[:2] != (3, 13):
        pytest.skip("reading 3.13 byte code needs a 3.13 interpreter")
    (reconciler,) = [b for b in bundles(bare_assembly) if b.handler == RECONCILER]
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


def pins_of(requirements: Path) -> list[str]:
    """`name==version` of a requirements file, boto3 & co. left out (the runtime provides them)."""
    provided = {canonicalize_name(name) for name in PROVIDED_BY_RUNTIME}
    found = []
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) not in provided:
                found.append(f"{canonicalize_name(requirement.name)}=={next(iter(requirement.specifier)).version}")
    return sorted(found)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_arm64_layers_ship_aarch64_code_and_their_twins_differ_only_in_it(assembly, bare_assembly):
    """The default's layers (the shared one, the reconciler's) hold the pinned requirements built for
    aarch64; what this machine imports in their place (an x86_64 twin) holds the same pins, the same
    Python code and byte code and the same botocore data, and x86_64 native code instead."""
    from infra.bundling import RECONCILER_REQUIREMENTS, RUNTIME_REQUIREMENTS

    (reconciler,) = [b for b in bundles(bare_assembly) if b.handler == RECONCILER]
    assert reconciler.architecture == "arm64" and {b.architecture for b in bundles(assembly)} == {"arm64"}
    shared, own = reconciler.layers
    for layer, requirements in ((shared, RUNTIME_REQUIREMENTS), (own, RECONCILER_REQUIREMENTS)):
        shipped = layer.parent
        assert sorted(canonicalize_name(p.split("==")[0]) + "==" + p.split("==")[1]
                      for p in layer_pins(shipped)) == pins_of(requirements)
        twin = build_twin(shipped, "x86_64")
        assert layer_pins(twin) == layer_pins(shipped)
        ours, theirs = files(shipped), files(twin)
        native = {name for name in ours if name.endswith(".so")}
        assert native and {elf_machine(shipped / name) for name in native} == {ELF_MACHINES["arm64"]}
        assert {elf_machine(twin / name) for name in theirs if name.endswith(".so")} == {ELF_MACHINES["x86_64"]}
        # A module's file names its platform (….cpython-313-aarch64-linux-gnu.so); abi3 ones do not.
        assert {name.replace("aarch64", "x86_64") for name in native} == {n for n in theirs if n.endswith(".so")}
        # The wheels' own records of their build (WHEEL tags, software bills of materials) differ too.
        built = re.compile(r".*\.dist-info/(WHEEL|sboms/.*)")
        alike = {name for name in ours if name not in native and not built.fullmatch(name)}
        assert alike == {name for name in theirs if not name.endswith(".so") and not built.fullmatch(name)}
        assert [name for name in sorted(alike) if ours[name] != theirs[name]] == []
        assert any(name.endswith(".pyc") for name in alike)
    assert (shared.parent / "botocore-data" / "endpoints.json").read_bytes() == \
        (build_twin(shared.parent, "x86_64") / "botocore-data" / "endpoints.json").read_bytes()


def test_a_bundle_is_imported_through_twins_only_when_this_machine_cannot_load_it(variant_assembly, bare_assembly):
    here = host_architecture()
    for where in (variant_assembly, bare_assembly):
        (bundle,) = [b for b in bundles(where) if b.handler == RECONCILER]
        importable = bundle.importable()
        if here in (None, bundle.architecture):
            assert importable == bundle and importable.shipped == ()
        else:
            assert importable.shipped == bundle.layers and importable.code == bundle.code
            assert [layer.parent for layer in importable.layers] == [build_twin(layer.parent, here)
                                                                    for layer in bundle.layers]
            assert importable.importable() == importable  # a twin is not twinned again
    assert {b.architecture for w in (variant_assembly, bare_assembly) for b in bundles(w)} == {"x86_64", "arm64"}
