"""Guarantee 2: the deploy lock lives in S3, says who holds it, fails fast or waits, and is
cleared only on purpose, with a record of who cleared it."""

import json
import time

import pytest

from tests.conftest import Cli
from tests.support.scenes import died_holding_the_lock
from tf_release import naming


@pytest.fixture
def stale(cli: Cli) -> Cli:
    """stage runs v1; a deploy of v2 died holding the lock."""
    died_holding_the_lock(cli.stores())
    return cli


def test_a_second_deploy_fails_at_once_naming_holder_host_time_and_version(stale: Cli) -> None:
    started = time.monotonic()
    result = stale.run("deploy", "-e", "stage", "--yes")
    assert time.monotonic() - started < 10
    assert result.returncode == 3
    lock = stale.stores().states.get("stage")[0].lock
    assert lock is not None
    assert result.stderr.strip() == (
        f"tf-release: error: stage is locked: arn:aws:sts::123456789012:user/moto on {lock.host} "
        f"started deploying v2 at {naming.format_time(lock.started_at)}. Another deploy "
        "is in progress; if none is running, clear it with `tf-release unlock --env stage`"
    )


def test_lock_timeout_gives_up_after_the_time_given(stale: Cli) -> None:
    started = time.monotonic()
    result = stale.run("deploy", "-e", "stage", "--yes", "--lock-timeout", "3")
    assert result.returncode == 3
    assert 3 <= time.monotonic() - started < 30


def test_unlock_records_who_cleared_the_lock(stale: Cli) -> None:
    stale.ok("unlock", "-e", "stage", "--yes")
    stores = stale.stores()
    [abandoned, _] = list(stores.deployments.entries("stage"))
    record = stores.deployments.get(abandoned)
    assert record.outcome == "abandoned" and record.version == 2
    assert record.cleared_by == "arn:aws:sts::123456789012:user/moto"
    shown = json.loads(stale.ok("show", "-e", "stage", "v2", "--json"))
    assert [d["outcome"] for d in shown["deployments"]] == ["abandoned"]
