"""The example project the tests release: names, the config, image URLs."""

import contextlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]

REGION = "eu-west-1"
BUCKET = "acme-releases"
PROJECT = "catalogue"
ACCOUNT = "123456789012"
ECR_REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"

CONFIG = f"""\
project = "{PROJECT}"
bucket  = "{BUCKET}"
region  = "{REGION}"

[environments.stage]
promote_from = "latest"

[environments.prod]
promote_from = "stage"
"""


def image(name: str, tag: str) -> str:
    """An image in a registry tf-release cannot check (ECR images: `ecr_image`)."""
    return f"registry.example.com/{PROJECT}/{name}:{tag}"


def ecr_image(name: str, tag: str) -> str:
    return f"{ECR_REGISTRY}/{name}:{tag}"


def push_image(ecr: Any, name: str, tag: str) -> str:
    """What `docker push` leaves behind, as far as tf-release can tell: ECR has `name:tag`."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "annotations": {"image": f"{name}:{tag}"},  # each tag its own digest
    }
    ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag=tag)
    return ecr_image(name, tag)
