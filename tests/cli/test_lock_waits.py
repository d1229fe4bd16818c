"""--lock-timeout waits for another deploy on every command that takes the lock, not only on
`deploy`: `apply` and `rollback` write their manifest only once the lock is free."""

import json
import time
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.project import image

# The second deploy's verification holds the lock until the test removes the gate file: on a
# loaded machine a fixed sleep ended before the command meant to meet the lock had started.
SLOW_STAGE = (
    '[environments.stage]\npromote_from = "latest"\n'
    'verify = [["sh", "-c", "while [ -e {gate} ]; do sleep 0.1; done"]]\nverify_timeout = 120\n'
)


def locked(cli: Cli) -> bool:
    return cli.stores().states.get("stage")[0].lock is not None


def deploying_slowly(cli: Cli) -> Path:
    """stage ran v1; v2 is being applied, its verification waiting under the lock until the
    returned gate file is removed."""
    gate = cli.cwd / "gate"
    cli.write_config(SLOW_STAGE.format(gate=gate))
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    gate.touch()
    cli.ok("publish", "api", image("api", "two"))
    cli.start("apply", "-e", "stage", "-r", "two", "--yes")
    deadline = time.monotonic() + 60
    while not locked(cli):
        assert time.monotonic() < deadline, "the slow deploy never took the lock"
        time.sleep(0.1)
    return gate


@pytest.mark.parametrize(
    "command",
    [["rollback", "-e", "stage", "-r", "back"], ["apply", "-e", "stage", "-r", "again", "--force"]],
    ids=["rollback", "apply"],
)
def test_lock_timeout_waits_for_the_deploy_that_holds_the_lock(
    cli: Cli, command: list[str]
) -> None:
    gate = deploying_slowly(cli)
    waiting = cli.start(*command, "--yes", "--lock-timeout", "60")
    time.sleep(2)  # it meets the lock and waits
    gate.unlink()
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    history = json.loads(cli.ok("history", "-e", "stage", "--json"))
    assert [h["version"] for h in history] == ["v3", "v2", "v1"]
    assert [d["outcome"] for d in history[1]["deployments"]] == ["succeeded"]  # not cut short


def test_without_a_lock_timeout_a_rollback_stops_at_the_lock(cli: Cli) -> None:
    gate = deploying_slowly(cli)
    result = cli.run("rollback", "-e", "stage", "-r", "back", "--yes")
    gate.unlink()
    assert result.returncode == 3
    assert "stage is locked" in result.stderr
