"""`show` and the board cost the same at any length of history (index.py), and without the
indexes (a project older than them, an index lost) they still answer the same, only slower."""

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.project import BUCKET, PROJECT, image
from tests.support.scenes import drop_indexes, six_weeks_of_releases
from tf_release.faces import board
from tf_release.flows import deploy, release, repair, views
from tf_release.model import naming
from tf_release.model.errors import AwsFailure
from tf_release.model.manifest import Manifest
from tf_release.model.state import Deployment, EnvironmentState
from tf_release.stores.bundle import Stores

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
VERSIONS = 10


def counted(stores: Stores) -> Counter[str]:
    assert stores.session is not None
    return stores.session.requests


def seed_history(stores: Stores, deployments: int) -> None:
    """Ten manifests and `deployments` records of them over the last 30 days, written straight
    to the bucket as a long-lived project's are, and the indexes rebuilt from them."""
    for version in range(1, VERSIONS + 1):
        manifest = Manifest(
            PROJECT, "stage", version, {"api": image("api", f"t{version}")}, f"seed {version}",
            NOW - timedelta(days=40, minutes=VERSIONS - version), "arn:aws:iam::1:user/a", "latest",
        )  # fmt: skip
        stores.manifests.write(naming.manifest_key(PROJECT, "stage", version), manifest.to_json())
    step = timedelta(days=29) / deployments
    for n in range(deployments):
        at = NOW - timedelta(days=29) + step * n
        record = Deployment(
            PROJECT, "stage", f"seed-{n}", n % VERSIONS + 1, "succeeded" if n % 7 else "failed",
            at, at, "arn:aws:iam::1:user/a", "ci", None,
        )  # fmt: skip
        stores.deployments.record(record)
    stores.states.replace("stage", EnvironmentState(latest_version=VERSIONS), None)
    stores.clock = lambda: NOW
    repair.rebuild_indexes(stores, "stage")


@pytest.mark.parametrize("deployments", [10, 100, 1000])
def test_show_of_the_oldest_version_reads_its_manifest_and_its_index(
    stores: Stores, deployments: int
) -> None:
    seed_history(stores, deployments)
    counted(stores).clear()
    shown = views.show(stores, "stage", 1)
    assert len(shown.deployments) == deployments // VERSIONS
    assert counted(stores) == Counter({"s3.GetObject": 2})


@pytest.mark.parametrize("deployments", [10, 100, 1000])
def test_the_board_of_thirty_days_reads_the_state_and_two_periods(
    stores: Stores, deployments: int
) -> None:
    """The state remembers no deployment here (as after `repair`): the two 32-day periods the
    window overlaps hold them all, who, why and how each ended. prod, never released, costs
    what `status` reads of a new environment: its state, a listing, and a look for v1."""
    seed_history(stores, deployments)
    counted(stores).clear()
    drawn = board.gather(stores, 30)
    assert len(drawn.marks) == deployments
    assert {mark.reason for mark in drawn.marks} == {f"seed {v}" for v in range(1, 11)}
    stage = Counter({"s3.GetObject": 3})
    prod = Counter({"s3.GetObject": 1, "s3.ListObjectsV2": 1, "s3.HeadObject": 1})
    assert counted(stores) == stage + prod


def test_without_indexes_show_and_the_board_answer_the_same(stores: Stores) -> None:
    """A project written by a tf-release older than the indexes: the record says it all."""
    six_weeks_of_releases(stores, NOW)
    indexed = board.gather(stores, 30), [views.show(stores, "prod", v) for v in (1, 2, 3)]
    for environment in ("stage", "prod"):
        drop_indexes(stores, environment)
    assert (board.gather(stores, 30), [views.show(stores, "prod", v) for v in (1, 2, 3)]) == indexed
    assert indexed[1][1].reverted_by == 3  # prod v2, rolled back as v3


def test_repair_rebuilds_the_indexes_the_deploys_wrote(stores: Stores) -> None:
    six_weeks_of_releases(stores, NOW)
    written = {
        environment: [views.show(stores, environment, v) for v in (1, 2, 3)]
        for environment in ("stage", "prod")
    }
    kept = {v: stores.index.version_use("prod", v) for v in (1, 2, 3)}
    for environment in ("stage", "prod"):
        drop_indexes(stores, environment)
        assert repair.rebuild_indexes(stores, environment) == repair.Indexes(3, 2)
    assert {v: stores.index.version_use("prod", v) for v in (1, 2, 3)} == kept
    counted(stores).clear()
    rebuilt = {
        environment: [views.show(stores, environment, v) for v in (1, 2, 3)]
        for environment in ("stage", "prod")
    }
    assert rebuilt == written
    assert counted(stores) == Counter({"s3.GetObject": 2 * 6})


def test_an_index_left_by_a_prepare_that_lost_the_number_is_not_used(stores: Stores) -> None:
    """A prepare writes the index of the number it tries, then its manifest: when an older
    tf-release took that number meanwhile, the index names another manifest and is ignored."""
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "first")
    use = stores.index.version_use("stage", 1)
    assert use is not None
    key = naming.version_use_key(PROJECT, "stage", 1)
    stale = type(use)(PROJECT, "stage", 1, use.manifest_created_at - timedelta(seconds=1))
    stores.index.write(key, stale.to_json())
    counted(stores).clear()
    shown = views.show(stores, "stage", 1)
    assert [entry.outcome for entry in shown.deployments] == ["succeeded"]
    assert counted(stores)["s3.ListObjectsV2"] == 1  # read from the record


def test_an_index_that_cannot_be_updated_is_removed_and_show_reads_the_record(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    release.publish(stores, "api", image("api", "one"))
    release.prepare(stores, "stage", "first")
    key = naming.version_use_key(PROJECT, "stage", 1)
    write = stores.index.write

    def refuse(where: str, body: bytes, **conditions: object) -> str | None:
        if where == key:
            raise AwsFailure(f"writing s3://{BUCKET}/{key}: AccessDenied")
        return write(where, body, **conditions)  # type: ignore[arg-type]

    monkeypatch.setattr(stores.index, "write", refuse)
    deploy.deploy(stores, "stage")
    assert stores.index.version_use("stage", 1) is None
    assert [entry.outcome for entry in views.show(stores, "stage", 1).deployments] == ["succeeded"]


def test_a_board_over_a_quiet_period_lists_nothing(stores: Stores) -> None:
    """A deploy in a new period knows, from the state's newest deployments, that nothing ran
    since the one before: a window over the quiet weeks needs no listing, even when the state
    remembers nothing (as after `repair`)."""
    release.publish(stores, "api", image("api", "one"))
    stores.clock = lambda: NOW - timedelta(days=40)
    release.apply(stores, "stage", "first")
    release.publish(stores, "api", image("api", "two"))
    stores.clock = lambda: NOW
    release.apply(stores, "stage", "second")
    stores.states.update("stage", lambda state: replace(state, recent=()))
    counted(stores).clear()
    assert [mark.version for mark in board.gather(stores, 30).marks] == [2]
    stage = Counter({"s3.GetObject": 1 + 2})
    prod = Counter({"s3.GetObject": 1, "s3.ListObjectsV2": 1, "s3.HeadObject": 1})
    assert counted(stores) == stage + prod
