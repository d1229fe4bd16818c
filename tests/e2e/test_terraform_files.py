"""The bundled Terraform is well-formed: formatted, and a valid configuration."""

import subprocess
from pathlib import Path

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


def test_the_example_and_its_module_validate(tf_cli: Cli) -> None:
    example = tf_cli.cwd / "terraform/examples/ecs_service"
    terraform("init", "-input=false", "-backend=false", cwd=example, env=tf_cli.env)
    assert '"valid": true' in terraform("validate", "-json", cwd=example, env=tf_cli.env)


def test_the_module_has_the_standard_files() -> None:
    module = ROOT / "terraform/modules/release_manifest"
    names = {path.name for path in module.iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= names
