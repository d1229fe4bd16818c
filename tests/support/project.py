"""The example project the tests release: names, the config, image URLs."""

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]

REGION = "eu-west-1"
BUCKET = "acme-releases"
PROJECT = "catalogue"
ACCOUNT = "123456789012"
ECR_REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"

# The tests' made-up registry (see image()) is never asked: a real one is tests/support/registry.py.
UNCHECKED = '\n[registries."registry.example.com"]\ncheck = false\n'

CONFIG = f"""\
project = "{PROJECT}"
bucket  = "{BUCKET}"
region  = "{REGION}"

[environments.stage]
promote_from = "latest"

[environments.prod]
promote_from = "stage"
{UNCHECKED}"""


def image(name: str, tag: str) -> str:
    """An image in a registry tf-release cannot check (ECR images: `ecr_image`)."""
    return f"registry.example.com/{PROJECT}/{name}:{tag}"


def ecr_image(name: str, tag: str) -> str:
    return f"{ECR_REGISTRY}/{name}:{tag}"


def image_manifest(name: str, tag: str, build: str = "1") -> str:
    """An image manifest with its own digest for each name, tag and build.

    moto digests a manifest from its layers, and gives one without layers one of 101 random
    digests: two images would then share a digest about once in a hundred pushes."""
    content = hashlib.sha256(f"{name}:{tag}:{build}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": [{"digest": f"sha256:{content}"}],
        }
    )


def push_image(ecr: Any, name: str, tag: str, build: str = "1") -> str:
    """What `docker push` leaves behind, as far as tf-release can tell: ECR has `name:tag`."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name)
    ecr.put_image(repositoryName=name, imageManifest=image_manifest(name, tag, build), imageTag=tag)
    return ecr_image(name, tag)
