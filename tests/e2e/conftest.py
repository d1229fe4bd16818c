"""Real Terraform: a CLI config for these offline machines, and a project whose environments run
the bundled example stack (or a test fixture stack) against the moto server."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import BIN, Cli
from tests.support import external_provider
from tests.support.project import BUCKET, PROJECT, REGION

ROOT = Path(__file__).parents[2]
PLUGIN_DIR_VARIABLE = "TF_RELEASE_TEST_PLUGIN_DIR"

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform on PATH")


@pytest.fixture(scope="session")
def terraform_cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each provider the machine's mirror (TF_RELEASE_TEST_PLUGIN_DIR) holds comes from there,
    `hashicorp/external` from the stand-in when the mirror has none, the rest from the registry."""
    folder = tmp_path_factory.mktemp("terraform")
    mirrors: list[tuple[str, list[str]]] = []
    plugin_dir = os.environ.get(PLUGIN_DIR_VARIABLE)
    if plugin_dir:
        held = sorted(p.name for p in Path(plugin_dir).glob("registry.terraform.io/hashicorp/*"))
        mirrors.append((plugin_dir, [f"registry.terraform.io/hashicorp/{name}" for name in held]))
    if not any("hashicorp/external" in name for _, names in mirrors for name in names):
        stand_in = folder / "stand-in-mirror"
        external_provider.install(stand_in, cache_home=folder / "home")
        mirrors.append((str(stand_in), ["registry.terraform.io/hashicorp/external"]))
    text = "provider_installation {\n"
    for path, names in mirrors:
        text += f"  filesystem_mirror {{\n    path    = {json.dumps(path)}\n"
        text += f"    include = {json.dumps(names)}\n  }}\n"
    excluded = [name for _, names in mirrors for name in names]
    text += f"  direct {{\n    exclude = {json.dumps(excluded)}\n  }}\n}}\n"
    config = folder / "cli.tfrc"
    config.write_text(text)
    return config


@pytest.fixture
def tf_cli(cli: Cli, terraform_cli_config: Path, tmp_path: Path) -> Cli:
    """The CLI runner with Terraform configured, and the repository's terraform/ copied into the
    project folder (Terraform writes lock files and state beside a module)."""
    shutil.copytree(ROOT / "terraform", tmp_path / "terraform")
    cli.env.update(
        TF_CLI_CONFIG_FILE=str(terraform_cli_config),
        PATH=f"{BIN}{os.pathsep}{cli.env['PATH']}",  # tf-release-manifest, for data "external"
        TF_IN_AUTOMATION="1",
    )
    return cli


def write_config(cli: Cli, environments: str) -> None:
    path = Path(cli.env["TF_RELEASE_CONFIG"])
    path.write_text(
        f'project = "{PROJECT}"\nbucket = "{BUCKET}"\nregion = "{REGION}"\n\n{environments}'
    )


def copy_fixture(cli: Cli, name: str) -> Path:
    target = cli.cwd / name
    shutil.copytree(ROOT / "tests" / "fixtures" / name, target)
    return target
