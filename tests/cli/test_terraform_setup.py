"""A Terraform set-up that cannot work is reported before anything is written."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.assertions import assert_refused
from tests.support.project import CONFIG, image
from tf_release.flows import release


def with_terraform_dir(cli: Cli, tmp_path: Path, folder: str) -> None:
    path = Path(cli.env["TF_RELEASE_CONFIG"])
    path.write_text(
        CONFIG.replace(
            'promote_from = "latest"\n', f'promote_from = "latest"\nterraform_dir = "{folder}"\n', 1
        )
    )
    release.publish(cli.stores(), "api", image("api", "one"))


def test_a_missing_terraform_binary_is_named_before_anything_is_written(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "infra").mkdir()
    with_terraform_dir(cli, tmp_path, "infra")
    cli.env["TF_RELEASE_TERRAFORM"] = "terraform-that-is-not-there"
    assert_refused(
        cli,
        ["apply", "-e", "stage", "-r", "one", "--yes"],
        "Terraform binary 'terraform-that-is-not-there' not found",
        code=1,
    )


def test_a_missing_terraform_dir_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    with_terraform_dir(cli, tmp_path, "no/such/folder")
    assert_refused(
        cli, ["apply", "-e", "stage", "-r", "one", "--yes"], "terraform_dir of stage does not exist"
    )


def test_a_relative_terraform_bin_is_found_beside_the_config_file(cli: Cli, tmp_path: Path) -> None:
    """Terraform runs in terraform_dir; `bin/terraform` is still the config folder's."""
    real = shutil.which("terraform")
    if real is None:
        pytest.skip("no terraform on PATH")
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "main.tf").write_text('resource "terraform_data" "release" {}\n')
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "terraform"
    wrapper.write_text(f'#!/bin/sh\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    with_terraform_dir(cli, tmp_path, "infra")
    path = Path(cli.env["TF_RELEASE_CONFIG"])
    path.write_text('terraform_bin = "bin/terraform"\n' + path.read_text())
    cli.env["TF_CLI_CONFIG_FILE"] = str(tmp_path / "no-cli-config")  # built-in resources only
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    assert "bin/terraform, Terraform" in cli.run("doctor").stdout
