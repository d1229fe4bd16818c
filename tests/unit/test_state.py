"""An environment's state remembers its newest deployments, so the board reads nothing else."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tf_release.model.state import RECENT, Deployment, EnvironmentState, Override

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def deployment(n: int, outcome: str = "succeeded", message: str = "") -> Deployment:
    return Deployment(
        project="catalogue",
        environment="stage",
        deployment_id=f"d{n}",
        version=n,
        outcome=outcome,
        started_at=START + timedelta(minutes=n),
        finished_at=START + timedelta(minutes=n, seconds=30),
        started_by="arn:aws:sts::123456789012:assumed-role/release/alice",
        host="laptop",
        previous_version=n - 1 or None,
        message=message,
    )


def test_a_state_remembers_its_newest_deployments_newest_first_up_to_a_limit() -> None:
    state = EnvironmentState()
    for n in range(1, RECENT + 6):
        state = state.remembering(deployment(n), f"release {n}")
    assert len(state.recent) == RECENT
    assert [item.version for item in state.recent[:2]] == [RECENT + 5, RECENT + 4]
    assert state.recent[-1].version == 6


def test_a_deployment_remembered_again_is_not_remembered_twice() -> None:
    state = EnvironmentState().remembering(deployment(1), "first")
    assert len(state.remembering(deployment(1), "first").recent) == 1


def test_what_a_state_remembers_survives_its_json() -> None:
    failed = replace(
        deployment(2, "failed", "terraform apply failed\nError: boom"),
        overrides=(Override("freeze", "hotfix", "alice"),),
    )
    state = EnvironmentState().remembering(deployment(1), None).remembering(failed, "api 1.5")
    again = EnvironmentState.from_json(state.to_json(), "test")
    assert again.recent == state.recent
    assert again.recent[0].message == "terraform apply failed"
    assert again.recent[0].reason == "api 1.5" and again.recent[1].reason is None


def test_an_override_is_described_on_one_line_unless_whole() -> None:
    override = Override("freeze", "INC-42 hotfix\nsee the incident channel", "alice")
    assert override.describe() == "freeze overridden by alice: INC-42 hotfix …"
    assert override.describe(whole=True).endswith("INC-42 hotfix\nsee the incident channel")
