"""The shared layer's trimmed botocore data (infra/bundling.py): every function points AWS_DATA_PATH at it,
and with it every service the functions use resolves in every region exactly as with botocore's own
1.25 MB file, which the functions no longer parse at each cold start."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import botocore
import botocore.session
import pytest
from botocore.regions import EndpointResolver

from infra.bundling import BOTOCORE_DATA_PATH, FUNCTIONS, ROOT, trimmed_endpoints
from scripts.bundle import bundles

CLIENT_LIMITS_SERVICES = ("dynamodb", "secretsmanager", "sns", "sqs")
STOCK = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
# Powertools' parameters helpers make their own clients: the service each one reads.
POWERTOOLS_READERS = {"get_secret": "secretsmanager", "get_secrets_by_name": "secretsmanager",
                      "SecretsProvider": "secretsmanager", "get_parameter": "ssm", "get_parameters": "ssm",
                      "SSMProvider": "ssm", "get_app_config": "appconfigdata"}


def shipped_data(assembly) -> Path:
    folders = {b.local(BOTOCORE_DATA_PATH) for b in bundles(assembly)}
    assert len(folders) == 1  # one shared layer, the same folder for every function
    return folders.pop()


def services_the_functions_use() -> set[str]:
    """Every service named by a client call (`client("sqs")`, `_client("sns")`, `boto3.client(...)`) or
    read through a Powertools parameters helper, in the functions' code."""
    found = set()
    for path in FUNCTIONS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name.lstrip("_") == "client" and node.args and isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
            elif name in POWERTOOLS_READERS:
                found.add(POWERTOOLS_READERS[name])
    return found


def test_the_services_kept_are_every_service_the_functions_make_clients_for():
    import sys

    sys.path.insert(0, str(FUNCTIONS))
    from sis_imports.adapters.aws import CLIENT_LIMITS

    used = services_the_functions_use()
    assert {"dynamodb", "sns", "sqs", "secretsmanager"} <= used  # the scan sees what we know is there
    assert used <= set(CLIENT_LIMITS) and set(CLIENT_LIMITS) == set(CLIENT_LIMITS_SERVICES)


def test_every_function_points_at_the_layers_trimmed_data(assembly, variant_assembly):
    for where in (assembly, variant_assembly):
        folder = shipped_data(where)
        for bundle in bundles(where):
            assert dict(bundle.variables)["AWS_DATA_PATH"] == "/opt/botocore-data", bundle.handler
            # In the shared layer (the first), beside its python/ folder: /opt/botocore-data in Lambda.
            assert folder == bundle.layers[0].parent / "botocore-data"
        shipped = json.loads((folder / "endpoints.json").read_text())
        kept = {s for partition in shipped["partitions"] for s in partition["services"]}
        assert kept == set(CLIENT_LIMITS_SERVICES)
        assert [p["partition"] for p in shipped["partitions"]] == [p["partition"] for p in STOCK["partitions"]]
        assert (folder / "endpoints.json").stat().st_size < 50_000  # botocore's own: 1.25 MB


def test_the_shipped_data_is_the_pinned_botocores():
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)", (ROOT / "requirements" / "dev.txt").read_text(), re.M))
    assert botocore.__version__ == pins["botocore"]


def regions():
    """Every region of every partition, and one that no partition lists yet but whose name it matches."""
    for partition in STOCK["partitions"]:
        yield from partition["regions"]
    yield "us-west-9"


def test_every_service_resolves_in_every_region_as_with_botocores_own_data(assembly):
    trimmed = EndpointResolver(json.loads((shipped_data(assembly) / "endpoints.json").read_text()))
    stock = EndpointResolver(STOCK)
    checked = 0
    for service in CLIENT_LIMITS_SERVICES:
        for region in regions():
            for fips in (False, True):
                for dualstack in (False, True):
                    try:
                        expected = stock.construct_endpoint(service, region, use_dualstack_endpoint=dualstack,
                                                            use_fips_endpoint=fips)
                    except Exception as exc:  # a combination the full data refuses: the trimmed must too
                        with pytest.raises(type(exc)):
                            trimmed.construct_endpoint(service, region, use_dualstack_endpoint=dualstack,
                                                       use_fips_endpoint=fips)
                        continue
                    assert trimmed.construct_endpoint(service, region, use_dualstack_endpoint=dualstack,
                                                      use_fips_endpoint=fips) == expected, (service, region)
                    checked += 1
            assert trimmed.get_partition_for_region(region) == stock.get_partition_for_region(region)
    assert checked > 4 * 40
    for partition in STOCK["partitions"]:
        name = partition["partition"]
        for service in CLIENT_LIMITS_SERVICES:
            assert trimmed.get_available_endpoints(service, name) == stock.get_available_endpoints(service, name)


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"])
def test_a_client_made_with_aws_data_path_reads_the_trimmed_file_and_gets_the_same_endpoint(
        assembly, region, monkeypatch):
    folder = shipped_data(assembly)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")

    def client_of(data_path: str | None, service: str):
        if data_path:
            monkeypatch.setenv("AWS_DATA_PATH", data_path)
        else:
            monkeypatch.delenv("AWS_DATA_PATH", raising=False)
        session = botocore.session.Session()  # reads AWS_DATA_PATH, as boto3's does in Lambda
        source = session.get_component("data_loader").load_data_with_path("endpoints")[1]
        return session.create_client(service, region_name=region), source

    for service in CLIENT_LIMITS_SERVICES:
        trimmed, source = client_of(str(folder), service)
        stock, stock_source = client_of(None, service)
        assert Path(source).parent == folder and Path(stock_source).parent != folder
        assert trimmed.meta.endpoint_url == stock.meta.endpoint_url, (service, region)
        assert trimmed.meta.partition == stock.meta.partition
        assert trimmed.meta.config.signature_version == stock.meta.config.signature_version


def test_a_service_the_data_does_not_know_is_refused_by_name():
    with pytest.raises(ValueError, match="has no service not-a-service"):
        trimmed_endpoints(STOCK, ["sqs", "not-a-service"])
    with pytest.raises(ValueError, match="no services"):
        trimmed_endpoints(STOCK, [])
