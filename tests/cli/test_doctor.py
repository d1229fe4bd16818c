"""`tf-release doctor` against a moto server, with one thing broken at a time."""

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.project import BUCKET, CONFIG, image
from tests.support.scenes import released
from tf_release import release


def checks(cli: Cli) -> tuple[int, dict[str, dict[str, object]]]:
    result = cli.run("doctor", "--json")
    return result.returncode, {c["check"]: c for c in json.loads(result.stdout)}


def with_stack(cli: Cli, folder: str) -> None:
    Path(cli.env["TF_RELEASE_CONFIG"]).write_text(
        CONFIG.replace(
            'promote_from = "latest"\n', f'promote_from = "latest"\nterraform_dir = "{folder}"\n', 1
        )
    )


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform on PATH")
def test_a_healthy_set_up_passes_every_check(cli: Cli) -> None:
    release.publish(cli.stores(), "api", image("api", "one"))
    (cli.cwd / "infra").mkdir()
    (cli.cwd / "infra" / "main.tf").write_text("")
    with_stack(cli, "infra")
    result = cli.run("doctor")
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok   config", "ok   aws identity", "ok   s3 bucket", "ok   ssm parameters",
        "ok   environment states", "ok   terraform", "ok   terraform_dir of stage",
    ]  # fmt: skip
    assert "you are arn:aws:sts::123456789012:user/moto" in result.stdout
    assert "/catalogue/image_ids/latest: 1 image(s) published" in result.stdout


def test_a_broken_config_is_the_only_line(cli: Cli) -> None:
    Path(cli.env["TF_RELEASE_CONFIG"]).write_text('project = "p"\n')
    code, found = checks(cli)
    assert code == 1 and list(found) == ["config"]
    assert "'bucket' is a required property" in str(found["config"]["detail"])


def test_missing_credentials_are_named_with_the_fix(cli: Cli) -> None:
    del cli.env["AWS_ACCESS_KEY_ID"], cli.env["AWS_SECRET_ACCESS_KEY"]
    code, found = checks(cli)
    assert code == 1 and not found["aws identity"]["ok"]
    assert "set AWS_PROFILE" in str(found["aws identity"]["detail"])


def test_a_missing_bucket_is_named_with_the_fix(cli: Cli) -> None:
    Path(cli.env["TF_RELEASE_CONFIG"]).write_text(CONFIG.replace("acme-releases", "no-bucket"))
    code, found = checks(cli)
    assert code == 1 and found["ssm parameters"]["ok"]
    assert str(found["s3 bucket"]["detail"]).startswith("bucket no-bucket does not exist: create")


def test_a_missing_terraform_and_stack_folder_are_named(cli: Cli) -> None:
    with_stack(cli, "nowhere")
    cli.env["TF_RELEASE_TERRAFORM"] = "no-terraform-here"
    code, found = checks(cli)
    assert code == 1
    assert "not found: install Terraform" in str(found["terraform"]["detail"])
    assert "does not exist: fix terraform_dir" in str(found["terraform_dir of stage"]["detail"])


def test_each_environment_role_is_assumed_and_named(cli: Cli) -> None:
    role = "arn:aws:iam::222222222222:role/release"
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\nrole_arn = "{role}"\n')
    code, found = checks(cli)
    assert code == 0, found
    detail = str(found["role_arn of stage"]["detail"])
    assert detail == "assumed: acting as arn:aws:sts::222222222222:assumed-role/release/tf-release"


def test_a_broken_or_missing_state_is_named_with_the_repair(cli: Cli) -> None:
    stores = cli.stores()
    released(stores)
    released(stores, environment="prod")
    s3 = cli.client("s3")
    s3.put_object(Bucket=BUCKET, Key="catalogue/environments/stage/state.json", Body=b"junk")
    s3.delete_object(Bucket=BUCKET, Key="catalogue/environments/prod/state.json")
    code, found = checks(cli)
    assert code == 1 and "environment states" not in found
    stage, prod = (str(found[f"state of {env}"]["detail"]) for env in ("stage", "prod"))
    assert "not valid JSON" in stage and stage.endswith("`tf-release repair --env stage`")
    assert "is missing" in prod and prod.endswith("`tf-release repair --env prod`")


def test_readable_states_are_one_line(cli: Cli) -> None:
    released(cli.stores())
    code, found = checks(cli)
    assert code == 0 and found["environment states"]["detail"] == "stage, prod: readable"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_stack_needing_a_provider_terraform_cannot_install_is_named_and_left_untouched(
    tf_cli: Cli, cli_config_without_external: Path
) -> None:
    tf_cli.env["TF_CLI_CONFIG_FILE"] = str(cli_config_without_external)
    stack = tf_cli.cwd / "terraform/examples/ecs_service_module"  # the module route
    with_stack(tf_cli, str(stack))
    before = snapshot(tf_cli.cwd / "terraform")
    result = tf_cli.run("doctor")
    assert result.returncode == 1
    [line] = [x for x in result.stdout.splitlines() if "terraform_dir of stage" in x]
    assert line.startswith(
        f"FAIL terraform_dir of stage: {stack} needs provider hashicorp/external, which "
        "Terraform cannot install here (provider registry.terraform.io/hashicorp/external was "
        "not found in any of the search locations): add it to the provider mirror"
    )
    assert snapshot(tf_cli.cwd / "terraform") == before


def test_a_stack_that_initialises_names_its_providers_once_for_environments_sharing_it(
    tf_cli: Cli, cli_config_without_external: Path
) -> None:
    tf_cli.env["TF_CLI_CONFIG_FILE"] = str(cli_config_without_external)
    stack = tf_cli.cwd / "terraform/examples/ecs_service"  # the SSM route: aws only
    tf_cli.write_config(
        "".join(
            f'[environments.{env}]\npromote_from = "{source}"\nterraform_dir = "{stack}"\n'
            for env, source in (("stage", "latest"), ("prod", "stage"))
        )
    )
    before = snapshot(stack)
    code, found = checks(tf_cli)
    assert code == 0, found
    for env in ("stage", "prod"):
        detail = str(found[f"terraform_dir of {env}"]["detail"])
        assert re.fullmatch(
            rf"{re.escape(str(stack))}: initialises \(hashicorp/aws v[\d.]+\)", detail
        )
    assert snapshot(stack) == before
