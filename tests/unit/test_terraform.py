from pathlib import Path

import pytest

from tf_release.errors import TerraformFailed
from tf_release.terraform import PlanSummary, find_binary

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
