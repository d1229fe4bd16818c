"""The tests' Terraform CLI config (tests/support/terraform.py `write_cli_config`): providers from
the machine's mirror or the stand-in, offered under Terraform's host and OpenTofu's."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.terraform import PLUGIN_DIR_VARIABLE, write_cli_config

AWS = "hashicorp/aws/5.100.0/linux_amd64"
EXTERNAL = "hashicorp/external/2.3.5/linux_amd64"  # the stand-in's version


def blocks(config: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The config's filesystem mirrors (path → include) and the direct block's exclude."""
    text = config.read_text()
    mirrors = re.findall(r'path\s*=\s*"([^"]+)"\s*include\s*=\s*\[([^]]*)\]', text)
    [excluded] = re.findall(r"direct\s*\{\s*exclude\s*=\s*\[([^]]*)\]", text)
    return {path: quoted(listed) for path, listed in mirrors}, quoted(excluded)


def quoted(listed: str) -> list[str]:
    return re.findall(r'"([^"]+)"', listed)


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine mirror holding the aws provider, unpacked (as /opt/tf-plugins is)."""
    folder = tmp_path / "plugins"
    (folder / "registry.terraform.io" / AWS).mkdir(parents=True)
    (folder / "registry.terraform.io" / AWS / "terraform-provider-aws_v5.100.0_x5").touch()
    monkeypatch.setenv(PLUGIN_DIR_VARIABLE, str(folder))
    return folder


def test_opentofu_finds_the_mirror_providers_through_real_folders_and_platform_links(
    mirror: Path, tmp_path: Path
) -> None:
    config = write_cli_config(tmp_path / "tf")
    opentofu, stand_in = tmp_path / "tf" / "opentofu-mirror", tmp_path / "tf" / "stand-in-mirror"
    assert blocks(config) == (
        {
            str(mirror): ["registry.terraform.io/hashicorp/aws"],
            str(stand_in): ["registry.terraform.io/hashicorp/external"],
            str(opentofu): [
                "registry.opentofu.org/hashicorp/aws",
                "registry.opentofu.org/hashicorp/external",
            ],
        },
        [
            "registry.terraform.io/hashicorp/aws",
            "registry.terraform.io/hashicorp/external",
            "registry.opentofu.org/hashicorp/aws",
            "registry.opentofu.org/hashicorp/external",
        ],
    )
    for platform, real in [
        (opentofu / "registry.opentofu.org" / AWS, mirror / "registry.terraform.io" / AWS),
        (
            opentofu / "registry.opentofu.org" / EXTERNAL,
            stand_in / "registry.terraform.io" / EXTERNAL,
        ),
    ]:
        # a symlink at the hostname level is not followed: real folders down to the version
        for folder in list(platform.relative_to(opentofu).parents)[:-1]:
            assert (opentofu / folder).is_dir() and not (opentofu / folder).is_symlink()
        assert platform.is_symlink() and platform.resolve() == real.resolve()


def test_without_external_neither_host_may_install_it(mirror: Path, tmp_path: Path) -> None:
    (mirror / "registry.terraform.io" / EXTERNAL).mkdir(parents=True)  # held, yet refused
    config = write_cli_config(tmp_path / "tf", external=False)
    opentofu = tmp_path / "tf" / "opentofu-mirror"
    mirrors, excluded = blocks(config)
    assert mirrors == {
        str(mirror): ["registry.terraform.io/hashicorp/aws"],
        str(opentofu): ["registry.opentofu.org/hashicorp/aws"],
    }
    assert excluded[-2:] == [
        "registry.terraform.io/hashicorp/external",
        "registry.opentofu.org/hashicorp/external",
    ]
    assert not (tmp_path / "tf" / "stand-in-mirror").exists()
    assert not (opentofu / "registry.opentofu.org" / "hashicorp" / "external").exists()


def test_a_packed_mirror_archive_is_linked_file_by_file(mirror: Path, tmp_path: Path) -> None:
    shutil.rmtree(mirror / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0")
    archive = (
        mirror / "registry.terraform.io/hashicorp/aws/terraform-provider-aws_5.1.0_linux_amd64.zip"
    )
    archive.touch()
    write_cli_config(tmp_path / "tf")
    link = tmp_path / "tf/opentofu-mirror/registry.opentofu.org/hashicorp/aws" / archive.name
    assert link.is_symlink() and link.resolve() == archive.resolve()


def test_without_a_machine_mirror_the_stand_in_serves_both_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PLUGIN_DIR_VARIABLE, raising=False)
    mirrors, excluded = blocks(write_cli_config(tmp_path / "tf"))
    assert mirrors == {
        str(tmp_path / "tf" / "stand-in-mirror"): ["registry.terraform.io/hashicorp/external"],
        str(tmp_path / "tf" / "opentofu-mirror"): ["registry.opentofu.org/hashicorp/external"],
    }
    assert excluded == [
        "registry.terraform.io/hashicorp/external",
        "registry.opentofu.org/hashicorp/external",
    ]


@pytest.mark.terraform
def test_terraform_installs_the_providers_under_opentofus_host(tmp_path: Path) -> None:
    """OpenTofu is not obtainable here: Terraform, asked for registry.opentofu.org/hashicorp/*,
    looks them up in the mirror exactly as OpenTofu would under its default host."""
    if shutil.which("terraform") is None or not os.environ.get(PLUGIN_DIR_VARIABLE):
        pytest.skip(f"needs terraform on PATH and the machine's mirror ({PLUGIN_DIR_VARIABLE})")
    config = write_cli_config(tmp_path / "tf")
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "main.tf").write_text(
        "terraform {\n  required_providers {\n"
        '    aws      = { source = "registry.opentofu.org/hashicorp/aws" }\n'
        '    external = { source = "registry.opentofu.org/hashicorp/external" }\n'
        "  }\n}\n"
    )
    done = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"],
        cwd=stack,
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "problems with the CLI configuration" not in done.stderr
    assert "Installed registry.opentofu.org/hashicorp/aws v5.100.0" in done.stdout
    assert "Installed registry.opentofu.org/hashicorp/external v2.3.5" in done.stdout
