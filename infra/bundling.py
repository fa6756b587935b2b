"""Lambda assets built without Docker: a dependency layer from manylinux wheels, and the code.

Both are built into `.build/<name>-<hash>/`, keyed by what goes in, so that the same inputs give
the same folder (the same CDK asset hash: no redeploy churn) and a rebuild is skipped when nothing
changed. Byte code is compiled with hash-based .pyc (no timestamps), because /opt and /var/task
are read-only in Lambda and modules without .pyc are compiled again at every cold start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".build"
RUNTIME_REQUIREMENTS = ROOT / "requirements" / "runtime.txt"
FUNCTIONS = ROOT / "functions"
PYTHON_VERSION = "3.13"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# The runtime provides these; a copy in the layer would only shadow it and cost cold start.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")


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


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _compile(folder: Path) -> None:
    python = find_python313()
    if python is None:
        return  # still correct, only slower to start: Lambda compiles in memory
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)],
                   check=True)


def _publish(tmp: Path, out: Path) -> Path:
    (tmp / ".complete").write_text("")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def build_layer(architecture: str = "x86_64", requirements: Path = RUNTIME_REQUIREMENTS) -> Path:
    """`.build/layer-<hash>/` holding `python/` with the pinned runtime requirements."""
    platform = PLATFORMS[architecture]
    out = BUILD / f"layer-{architecture}-{_digest(requirements.read_bytes(), platform.encode(), PYTHON_VERSION.encode())}"
    if (out / ".complete").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    target = tmp / "python"
    env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--platform", platform, "--implementation", "cp", "--python-version", PYTHON_VERSION,
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
    _compile(target)
    return _publish(tmp, out)


def _code_files() -> list[Path]:
    return sorted(
        p for p in FUNCTIONS.rglob("*.py") if "__pycache__" not in p.parts and not p.name.startswith(".")
    )


def build_code() -> Path:
    """`.build/code-<hash>/`: the handlers and the shared package, nothing else."""
    files = _code_files()
    digest = _digest(*(str(p.relative_to(FUNCTIONS)).encode() + b"\0" + p.read_bytes() for p in files))
    out = BUILD / f"code-{digest}"
    if (out / ".complete").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in files:
        dest = tmp / path.relative_to(FUNCTIONS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    _compile(tmp)
    return _publish(tmp, out)
