"""The Lambda bundles as synthesized: each function's code folder plus its layers, from cdk.out.

Used by the bundle test and the cold-start benchmark: both import a handler from exactly what
ships, with only boto3 (which the runtime provides) beside it, under `python3.13 -I`. Every function
has the shared layer; the reconciler (with `canvas_instances`) has its own second layer too. Each runs
with the environment the template gives its function (`Bundle.environment`), its paths in Lambda's /opt
and /var/task mapped to the folders here.

Functions are arm64 by default, whose layers' native code (pydantic-core, cryptography, cffi) an x86_64
machine cannot load: `Bundle.importable` gives the bundle with each layer replaced by its twin for this
machine (infra.bundling.build_twin: the same pins, Python code and botocore data, this machine's .so
files). What reads the files that ship (metadata, byte code, which layer holds what) reads `layers`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import boto3

from infra.bundling import BUILD, build_twin, find_python313, host_architecture

RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bundle-check",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "TABLE_NAME": "sis-batches",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "SIS_AUTH": "jwt",
    "SIS_ROOT_ACCOUNTS": "bench-placeholder",
    # The template joins the secrets' ARNs into it at deploy (a Fn::Join), so it needs a stand-in here.
    "CANVAS_INSTANCES": '[{"url": "https://canvas.example.edu", '
                        '"token_secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-placeholder-AbCdEf"}]',
    "POWERTOOLS_SERVICE_NAME": "canvas-sis-imports",
    "POWERTOOLS_METRICS_NAMESPACE": "CanvasSisImports",
    "PYTHONDONTWRITEBYTECODE": "1",  # as in Lambda, where /var/task and /opt are read-only
}


@dataclass(frozen=True)
class Bundle:
    name: str
    handler: str  # module.function
    code: Path
    layers: tuple[Path, ...]  # each layer's python/ folder, in the function's order (the shared one first)
    variables: tuple[tuple[str, str], ...] = ()  # the template's environment: its plain values
    architecture: str = "x86_64"  # the function's (CloudFormation's default when the template names none)
    shipped: tuple[Path, ...] = ()  # when `layers` are this machine's twins (importable): the layers that ship

    def importable(self) -> Bundle:
        """This bundle as this machine can import it: itself when its architecture is this machine's,
        else with each layer's twin built for this machine (`shipped` then names the originals)."""
        here = host_architecture()
        if self.shipped or here is None or here == self.architecture:
            return self
        twins = tuple(build_twin(layer.parent, here) / layer.name for layer in self.layers)
        return dataclasses.replace(self, layers=twins, shipped=self.layers)

    @property
    def environment(self) -> dict[str, str]:
        """LAMBDA_ENV with the function's own variables over it (values CloudFormation fills in at deploy,
        a Ref or a GetAtt, keep LAMBDA_ENV's placeholders), and AWS_DATA_PATH as a folder here."""
        env = {**LAMBDA_ENV, **dict(self.variables)}
        if "AWS_DATA_PATH" in env:
            env["AWS_DATA_PATH"] = os.pathsep.join(str(self.local(p)) for p in env["AWS_DATA_PATH"].split(os.pathsep))
        return env

    def local(self, deployed: str) -> Path:
        """The folder here of a path in Lambda: /var/task is the code, /opt what the layers unpack there
        (the last layer holding it wins, as in Lambda)."""
        path = PurePosixPath(deployed)
        if path.is_relative_to("/var/task"):
            return self.code / path.relative_to("/var/task")
        if path.is_relative_to("/opt"):
            rest = path.relative_to("/opt")
            for layer in reversed(self.layers):
                if (layer.parent / rest).exists():
                    return layer.parent / rest
        raise ValueError(f"{self.handler}: {deployed} is in none of its folders")

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def paths(self) -> list[Path]:
        """sys.path as in Lambda, before the runtime's own packages: the code, then the layers."""
        return [self.code, *self.layers]


def bundles(assembly: Path) -> list[Bundle]:
    """Every function of the synthesized stack with its code and layer folders."""
    assembly = assembly.resolve()
    (template_path,) = assembly.glob("*.template.json")
    resources = json.loads(template_path.read_text())["Resources"]

    def folder(s3_key: str) -> Path:
        return assembly / f"asset.{s3_key.split('.')[0]}"

    layers = {
        name: folder(r["Properties"]["Content"]["S3Key"])
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    out = []
    for name, r in resources.items():
        props = r["Properties"]
        if r["Type"] != "AWS::Lambda::Function" or not str(props.get("Handler", "")).startswith("handlers."):
            continue
        variables = props.get("Environment", {}).get("Variables", {})
        out.append(Bundle(name, props["Handler"], folder(props["Code"]["S3Key"]),
                          tuple(layers[ref["Ref"]] / "python" for ref in props["Layers"]),
                          tuple((k, v) for k, v in sorted(variables.items()) if isinstance(v, str)),
                          (props.get("Architectures") or ["x86_64"])[0]))
    return sorted(out, key=lambda b: b.handler)


def runtime_dir() -> Path:
    """A folder holding only what the Lambda runtime adds: boto3 and its dependencies."""
    site = Path(boto3.__file__).resolve().parent.parent
    out = BUILD / "runtime-boto3"
    if (out / ".complete").exists():
        return out
    # Built aside and renamed into place: two processes (test workers, a bench) may build it at once.
    BUILD.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="runtime-boto3.", dir=BUILD))
    for name in RUNTIME_PACKAGES:
        for path in site.glob(name):
            shutil.copytree(path, work / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        for path in site.glob(f"{name}.py"):
            shutil.copy(path, work / path.name)
    subprocess.run([find_python313() or "python3", "-m", "compileall", "-q", str(work)], check=True)
    (work / ".complete").write_text("")
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)  # an unfinished one from before
        try:
            work.rename(out)
            return out
        except OSError:
            pass  # another process's is in place
    shutil.rmtree(work, ignore_errors=True)
    return out


def run_isolated(python: str, paths: list[Path], code: str, timeout: int = 60,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `code` under `python -I` with sys.path limited to `paths` (plus the stdlib), in `env`
    (LAMBDA_ENV unless given: a bundle's `environment`)."""
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    # -S as well: not even the interpreter's own site-packages may help.
    return subprocess.run([python, "-I", "-S", "-c", prelude + code], capture_output=True, text=True, timeout=timeout,
                          env=LAMBDA_ENV if env is None else env, cwd="/")
