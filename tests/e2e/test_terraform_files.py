"""The bundled Terraform is well-formed: formatted, and a valid configuration."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.project import ROOT


def terraform(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_bundled_terraform_is_fmt_clean() -> None:
    terraform("fmt", "-check", "-recursive", "-diff", cwd=ROOT / "terraform")


@pytest.mark.parametrize("example", ["ecs_service", "ecs_service_module"])
def test_each_example_validates(tf_cli: Cli, example: str) -> None:
    """One example per route: the SSM route's, and the module route's with its module."""
    folder = tf_cli.cwd / "terraform/examples" / example
    terraform("init", "-input=false", "-backend=false", cwd=folder, env=tf_cli.env)
    assert '"valid": true' in terraform("validate", "-json", cwd=folder, env=tf_cli.env)


def test_the_ssm_route_example_needs_only_the_aws_provider(tmp_path: Path) -> None:
    """The quickstart's stack must initialise where `hashicorp/external` cannot be installed.
    In a copy without its lock file: with one, `terraform providers` wants the locked packages
    installed in .terraform, which only `init` fills."""
    example = tmp_path / "ecs_service"
    shutil.copytree(
        ROOT / "terraform/examples/ecs_service",
        example,
        ignore=shutil.ignore_patterns(".terraform.lock.hcl", ".terraform"),
    )
    shown = terraform("providers", cwd=example)
    assert "provider[registry.terraform.io/hashicorp/aws]" in shown
    assert "hashicorp/external" not in shown


def test_the_module_has_the_standard_files() -> None:
    module = ROOT / "terraform/modules/release_manifest"
    names = {path.name for path in module.iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= names
