"""Test-wide settings: a fake AWS (moto) and no network."""

import os

# Set before any handler module is imported: Powertools and boto3 read these at import.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "canvas-sis-imports",
        "POWERTOOLS_METRICS_NAMESPACE": "CanvasSisImports",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
)
for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(name, None)
