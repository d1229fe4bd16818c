"""The example project the tests release: names, the config, image URLs."""

from pathlib import Path

ROOT = Path(__file__).parents[2]

REGION = "eu-west-1"
BUCKET = "acme-releases"
PROJECT = "catalogue"
ACCOUNT = "123456789012"

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
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}:{tag}"
