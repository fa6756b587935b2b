"""Lambda assets built without Docker: a dependency layer from manylinux wheels, and the code.

Both are built into `.build/<name>-<hash>/`, keyed by what goes in, so that the same inputs give
the same folder (the same CDK asset hash: no redeploy churn) and a rebuild is skipped when nothing
changed. Byte code is compiled with hash-based .pyc (no timestamps), because /opt and /var/task
are read-only in Lambda and modules without .pyc are compiled again at every cold start. The .pyc
name their sources by the paths Lambda uses (/var/task, /opt/python), not this checkout's, so two
machines build the same bytes.

The shared layer also carries `botocore-data/endpoints.json`: botocore's own, cut to the services the
functions make clients for (every partition and region kept). botocore parses its 1.25 MB copy at every
cold start; the functions point `AWS_DATA_PATH` at this one instead (README, "Cold start").

Layers are built for the stack's architecture, arm64 by default (Graviton: 20% less per GB-second),
from manylinux wheels pip fetches for that platform whatever this machine is. A machine of the other
architecture cannot load their native code: `build_twin` builds, from the same pins, a copy it can.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".build"
RUNTIME_REQUIREMENTS = ROOT / "requirements" / "runtime.txt"
# The reconciler's own layer (canvasapi and its dependencies): only that function gets it.
RECONCILER_REQUIREMENTS = ROOT / "requirements" / "reconciler.txt"
FUNCTIONS = ROOT / "functions"
PYTHON_VERSION = "3.13"
# manylinux2014 first (what the pins resolve to today), then manylinux_2_28: the Python 3.13 runtime
# runs on Amazon Linux 2023 (glibc 2.34), so a future pin that ships only 2_28 wheels still installs.
PLATFORMS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
# Bump when the way a folder is built changes, so that cached folders from before are not reused.
RECIPE = "2"
# The runtime provides these (runtime.txt leaves them out); a copy would only shadow the runtime's.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
# Where Lambda puts each folder: what the compiled .pyc record as their source paths.
CODE_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"
KEEP_CODE_BUILDS = 5
# Twins of layers (build_twin): the shared and the reconciler's, and those of the build before.
KEEP_TWINS = 4
# The trimmed botocore data, in the shared layer: Lambda unpacks layers into /opt.
BOTOCORE_DATA = "botocore-data"
BOTOCORE_DATA_PATH = f"/opt/{BOTOCORE_DATA}"


@functools.cache
def find_python313() -> str | None:
    """A Python 3.13 to compile byte code the runtime can use (pyenv's shim may hide it)."""
    candidates = ["python3.13", *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))]
    if sys.version_info[:2] == (3, 13):
        candidates.insert(0, sys.executable)
    for candidate in candidates:
        try:
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return candidate
    return None


@functools.cache
def _compiler_version() -> str:
    """Part of every cache key: byte code from another interpreter (or none) is another folder."""
    python = find_python313()
    if python is None:
        return "no-pyc"
    out = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _compile(folder: Path, deployed_at: str) -> None:
    python = find_python313()
    if python is None:
        return  # still correct, only slower to start: Lambda compiles in memory
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(folder.resolve()), "-p", deployed_at, str(folder.resolve())],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # constant ordering of any set constants
    )


def _scratch(out: Path) -> Path:
    """A folder of this process's own: tests and a synth may build the same thing at once."""
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def _publish(tmp: Path, out: Path) -> Path:
    (tmp / ".complete").write_text("")
    if out.exists() and not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)  # left by a build that was interrupted
    try:
        tmp.rename(out)
    except OSError:
        # Another process published the same inputs first (the same bytes): keep theirs.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / ".complete").exists():
            raise
    return out


def trimmed_endpoints(stock: dict[str, Any], services: Sequence[str]) -> dict[str, Any]:
    """botocore's endpoints data with only `services` in each partition; partitions, regions and their
    defaults are kept whole, so that any region resolves as with the full file."""
    known = {service for partition in stock["partitions"] for service in partition["services"]}
    unknown = sorted(set(services) - known)
    if unknown or not services:
        raise ValueError(f"botocore's endpoints data has no service {', '.join(unknown)}" if unknown
                         else "no services to keep in the trimmed botocore data")
    return {**stock, "partitions": [
        {**partition, "services": {s: partition["services"][s] for s in sorted(services) if s in partition["services"]}}
        for partition in stock["partitions"]
    ]}


def botocore_endpoints() -> dict[str, Any]:
    """The endpoints data of the build machine's botocore: the venv's, the version requirements/dev.txt pins."""
    import botocore

    return json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_bytes())


def build_layer(architecture: str = "arm64", requirements: Path = RUNTIME_REQUIREMENTS, name: str = "layer",
                botocore_services: Sequence[str] = ()) -> Path:
    """`.build/<name>-<arch>-<hash>/` holding `python/` with the pinned `requirements`, and with
    `botocore_services`, `botocore-data/endpoints.json` cut to them (trimmed_endpoints).

    `name` tells layers apart: each keeps its own newest build (the shared `layer`, the reconciler's
    `reconciler-layer`), so building one never prunes the other.
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name) or name.endswith("-"):
        raise ValueError(f"not a layer name: {name!r}")
    if architecture not in PLATFORMS:
        raise ValueError(f"not a Lambda architecture: {architecture!r} (one of {', '.join(PLATFORMS)})")
    platforms = PLATFORMS[architecture]
    data = b""
    if botocore_services:
        trimmed = trimmed_endpoints(botocore_endpoints(), botocore_services)
        data = json.dumps(trimmed, separators=(",", ":"), sort_keys=True).encode()
    # Without services the key is what it was: the reconciler's layer keeps its hash.
    key = _digest(requirements.read_bytes(), " ".join(platforms).encode(), PYTHON_VERSION.encode(), RECIPE.encode(),
                  _compiler_version().encode(), *((data,) if data else ()))
    out = BUILD / f"{name}-{architecture}-{key}"
    if (out / ".complete").exists():
        return out
    # Matches this name's folders only: "layer-arm64-*" is not a prefix of "reconciler-layer-arm64-…".
    _prune(f"{name}-{architecture}-*", keep=1)
    tmp = _scratch(out)
    _install(requirements, platforms, tmp / "python")
    if data:
        (tmp / BOTOCORE_DATA).mkdir()
        (tmp / BOTOCORE_DATA / "endpoints.json").write_bytes(data)
    return _publish(tmp, out)


def host_architecture() -> str | None:
    """The Lambda architecture whose native code this machine's Python can load (None: neither, e.g. macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())


def layer_pins(layer: Path) -> list[str]:
    """`name==version` of every distribution a built layer folder's `python/` holds: what it was
    installed from (each requirements file pins everything, installed with --no-deps)."""
    from importlib.metadata import distributions

    pins = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions(path=[str(layer / "python")])},
                  key=str.lower)
    if not pins:
        raise ValueError(f"{layer}: no installed distributions in its python/ folder")
    return pins


def build_twin(layer: Path, architecture: str) -> Path:
    """`.build/twin-<arch>-<hash>/`: the built layer folder `layer` (its python/, perhaps botocore-data/)
    with python/ installed again for `architecture` from the same pins (layer_pins), everything else
    copied as it is. An arm64 layer's native code (pydantic-core, cryptography, cffi) cannot be loaded
    on an x86_64 machine: what imports a bundle here (the bundle test, the cold-start benchmark) imports
    this twin instead, the same Python code, byte code and botocore data with this machine's .so files."""
    platforms = PLATFORMS[architecture]
    pins = "\n".join(layer_pins(layer)) + "\n"
    others = sorted(p for p in layer.rglob("*") if p.is_file()
                    and (top := p.relative_to(layer).parts[0]) != "python" and not top.startswith("."))
    key = _digest(pins.encode(), " ".join(platforms).encode(), PYTHON_VERSION.encode(), RECIPE.encode(),
                  _compiler_version().encode(),
                  *(str(p.relative_to(layer)).encode() + b"\0" + p.read_bytes() for p in others))
    out = BUILD / f"twin-{architecture}-{key}"
    if (out / ".complete").exists():
        return out
    _prune(f"twin-{architecture}-*", keep=KEEP_TWINS - 1)
    tmp = _scratch(out)
    tmp.mkdir(parents=True)
    requirements = tmp / "requirements.txt"
    requirements.write_text(pins)
    _install(requirements, platforms, tmp / "python")
    requirements.unlink()
    for path in others:
        dest = tmp / path.relative_to(layer)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    return _publish(tmp, out)


def _install(requirements: Path, platforms: Sequence[str], target: Path) -> None:
    """The pinned `requirements` as manylinux wheels for `platforms` into `target`, compiled as Lambda reads them."""
    # This machine's pip.conf names a constraints file; the layer is exactly its requirements, nothing else.
    env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            *(arg for tag in platforms for arg in ("--platform", tag)),
            "--implementation", "cp", "--python-version", PYTHON_VERSION,
            # --no-deps: each requirements file pins every transitive dependency (the bundle test proves it).
            "--only-binary=:all:", "--no-deps", "--target", str(target), "-r", str(requirements),
        ],
        check=True,
        env=env,
    )
    for name in PROVIDED_BY_RUNTIME:
        for path in target.glob(f"{name}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    # pip leaves these; they differ between installs and are of no use in Lambda.
    for path in target.glob("bin"):
        shutil.rmtree(path)
    for record in target.glob("*.dist-info/RECORD"):
        record.unlink()
    _compile(target, LAYER_ROOT)


def _code_files() -> list[Path]:
    return sorted(
        p for p in FUNCTIONS.rglob("*.py") if "__pycache__" not in p.parts and not p.name.startswith(".")
    )


def build_code() -> Path:
    """`.build/code-<hash>/`: the handlers and the shared package, nothing else."""
    files = _code_files()
    digest = _digest(RECIPE.encode(), _compiler_version().encode(),
                     *(str(p.relative_to(FUNCTIONS)).encode() + b"\0" + p.read_bytes() for p in files))
    out = BUILD / f"code-{digest}"
    if (out / ".complete").exists():
        return out
    _prune("code-*", keep=KEEP_CODE_BUILDS - 1)
    tmp = _scratch(out)
    for path in files:
        dest = tmp / path.relative_to(FUNCTIONS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    _compile(tmp, CODE_ROOT)
    return _publish(tmp, out)


def _prune(pattern: str, keep: int) -> None:
    """Every code change makes a folder; keep the newest few (a running synth may still read one)."""
    built = []
    for path in BUILD.glob(pattern):
        try:
            if ".tmp" not in path.name:
                built.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue  # another process pruned it meanwhile
    for _, old in sorted(built)[: max(0, len(built) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
