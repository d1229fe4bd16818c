"""--lock-timeout waits for another deploy on every command that takes the lock, not only on
`deploy`: `apply` and `rollback` write their manifest only once the lock is free."""

import json
import time

import pytest

from tests.conftest import Cli
from tests.support.project import image

SLOW_STAGE = (
    '[environments.stage]\npromote_from = "latest"\nverify = [["sleep", "4"]]\n'
    "verify_timeout = 60\n"
)


def locked(cli: Cli) -> bool:
    return cli.stores().states.get("stage")[0].lock is not None


def deploying_slowly(cli: Cli) -> None:
    """stage ran v1; v2 is being applied, its verification still sleeping under the lock."""
    cli.write_config(SLOW_STAGE)
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    cli.ok("publish", "api", image("api", "two"))
    cli.start("apply", "-e", "stage", "-r", "two", "--yes")
    deadline = time.monotonic() + 60
    while not locked(cli):
        assert time.monotonic() < deadline, "the slow deploy never took the lock"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "command",
    [["rollback", "-e", "stage", "-r", "back"], ["apply", "-e", "stage", "-r", "again", "--force"]],
    ids=["rollback", "apply"],
)
def test_lock_timeout_waits_for_the_deploy_that_holds_the_lock(
    cli: Cli, command: list[str]
) -> None:
    deploying_slowly(cli)
    result = cli.run(*command, "--yes", "--lock-timeout", "60")
    assert result.returncode == 0, result.stderr
    history = json.loads(cli.ok("history", "-e", "stage", "--json"))
    assert [h["version"] for h in history] == ["v3", "v2", "v1"]
    assert [d["outcome"] for d in history[1]["deployments"]] == ["succeeded"]  # not cut short


def test_without_a_lock_timeout_a_rollback_stops_at_the_lock(cli: Cli) -> None:
    deploying_slowly(cli)
    result = cli.run("rollback", "-e", "stage", "-r", "back", "--yes")
    assert result.returncode == 3
    assert "stage is locked" in result.stderr
