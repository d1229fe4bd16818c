"""The AWS requests each operation makes, counted exactly (botocore's before-send events), so
that costs never grow with history. Timings live in `make bench`, not here."""

import math
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.support.project import REGION, ecr_image, image, push_image
from tests.support.scenes import (
    died_holding_the_lock,
    drop_indexes,
    failed_to_deploy,
    released,
    six_weeks_of_releases,
)
from tf_release.faces import board, external
from tf_release.flows import deploy, release, views
from tf_release.flows.gates import check_rollouts
from tf_release.model.errors import GateFailed, HeldByPolicy
from tf_release.model.progress import Quiet
from tf_release.stores.bundle import Stores
from tf_release.stores.ecs import EcsServices
from tf_release.terraform.runner import PlanSummary

BOARD_NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


# A state that is not there: a new environment, unless it has deployment records
NEW_ENVIRONMENT = Counter({"s3.ListObjectsV2": 1})


def counted(stores: Stores) -> Counter[str]:
    assert stores.session is not None
    return stores.session.requests


def publish_many(stores: Stores, count: int, tag: str = "one") -> None:
    for n in range(count):
        release.publish(stores, f"svc{n:03d}", image(f"svc{n:03d}", tag))


def seed_manifests(stores: Stores, environment: str, count: int) -> None:
    for _ in range(count):
        release.prepare(stores, environment, "seed", force=True)


@pytest.mark.parametrize("images", [1, 10, 25])
def test_publish_is_one_request(stores: Stores, images: int) -> None:
    counted(stores).clear()
    release.publish(stores, "api", image("api", "one"))
    assert sum(counted(stores).values()) == 1


def test_retire_reads_the_image_and_deletes_it(stores: Stores) -> None:
    publish_many(stores, 12)
    counted(stores).clear()
    release.retire(stores, "svc003")
    assert counted(stores) == Counter({"ssm.GetParameters": 1, "ssm.DeleteParameters": 1})


@pytest.mark.parametrize("images", [1, 10, 11, 25])
def test_prepare_reads_the_source_ten_at_a_time_and_does_five_more(
    stores: Stores, images: int
) -> None:
    """With the allow-list, the names are known: exactly ⌈N/10⌉ reads of the source."""
    stores.config = replace(stores.config, images=tuple(f"svc{n:03d}" for n in range(images)))
    publish_many(stores, images)
    release.prepare(stores, "stage", "seed", force=True)  # history does not change the cost
    release.prepare(stores, "stage", "seed", force=True)
    counted(stores).clear()
    stores.__dict__.pop("caller", None)  # a new run asks STS again
    release.prepare(stores, "stage", "x", force=True)
    # STS, the state, the manifest's index, the manifest, the state again
    assert sum(counted(stores).values()) == math.ceil(images / 10) + 5, counted(stores)


@pytest.mark.parametrize("images,pages", [(1, 1), (10, 2), (11, 2), (25, 3)])
def test_prepare_without_an_allow_list_reads_the_source_by_path(
    stores: Stores, images: int, pages: int
) -> None:
    """SSM answers a full page with a NextToken even when nothing follows: ⌊N/10⌋ + 1 pages."""
    publish_many(stores, images)
    counted(stores).clear()
    stores.__dict__.pop("caller", None)
    release.prepare(stores, "stage", "x", force=True)
    assert counted(stores)["ssm.GetParametersByPath"] == pages
    assert sum(counted(stores).values()) == pages + 5 + NEW_ENVIRONMENT.total()


def test_a_selective_prepare_reads_only_the_images_named(stores: Stores) -> None:
    publish_many(stores, 25)
    release.apply(stores, "stage", "first")
    counted(stores).clear()
    release.prepare(stores, "stage", "x", images=["svc001", "svc002"], force=True)
    assert counted(stores)["ssm.GetParameters"] == 1
    assert "ssm.GetParametersByPath" not in counted(stores)


@pytest.mark.parametrize("images", [1, 10, 25])
def test_a_promotion_reads_the_source_state_not_its_parameters(stores: Stores, images: int) -> None:
    """Whatever N: both states, STS, the manifest's index, the manifest and the new state; prod
    being new, one listing of its records (a lost state is no new environment)."""
    publish_many(stores, images)
    release.apply(stores, "stage", "first")
    counted(stores).clear()
    stores.__dict__.pop("caller", None)
    release.prepare(stores, "prod", "promote")
    assert counted(stores) == Counter(
        {"s3.GetObject": 2, "sts.GetCallerIdentity": 1, "s3.PutObject": 3} | NEW_ENVIRONMENT
    )


def test_a_prepare_that_reuses_the_newest_manifest_reads_it_and_its_index(
    stores: Stores,
) -> None:
    publish_many(stores, 10)
    release.prepare(stores, "stage", "first")
    counted(stores).clear()
    prepared = release.prepare(stores, "stage", "retry")
    assert prepared.reused
    assert counted(stores) == Counter({"ssm.GetParametersByPath": 2, "s3.GetObject": 3})


@pytest.mark.parametrize("images,changing", [(10, 1), (25, 3), (25, 25)])
def test_deploy_writes_only_what_changes(stores: Stores, images: int, changing: int) -> None:
    publish_many(stores, images)
    release.apply(stores, "stage", "first")
    for n in range(changing):
        release.publish(stores, f"svc{n:03d}", image(f"svc{n:03d}", "two"))
    release.prepare(stores, "stage", "second")
    counted(stores).clear()
    stores.__dict__.pop("caller", None)
    deploy.deploy(stores, "stage")
    requests = counted(stores)
    assert requests["ssm.PutParameter"] == changing + 1  # + the version pointer
    # + 4: the version's index and the period's, each read and written as the deploy ends
    assert sum(requests.values()) <= math.ceil(images / 10) + changing + 8 + 4, requests


def test_history_of_twenty_does_not_depend_on_how_many_manifests_exist(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    seed_manifests(stores, "stage", 45)
    deploy.deploy(stores, "stage")
    counted(stores).clear()
    entries = views.history(stores, "stage", limit=20)
    assert [e.manifest.version for e in entries] == list(range(45, 25, -1))
    # the state, the probe for a newer version, the 20 manifests and the one before them (so
    # the oldest row has its changes), one page of deployment records
    assert counted(stores) == Counter(
        {"s3.GetObject": 1 + 20 + 1, "s3.HeadObject": 1, "s3.ListObjectsV2": 1}
    )
    assert sum(counted(stores).values()) <= 25


def test_a_diff_against_a_label_reads_the_state_and_the_label_and_asks_ecr_nothing(
    stores: Stores,
) -> None:
    """An image that stays keeps the digest it runs with, as in prepare: ECR is not asked."""
    ecr = boto3.client("ecr", region_name=REGION)
    for name in ("api", "worker"):
        release.publish(stores, name, push_image(ecr, name, "1"))
    release.apply(stores, "stage", "first")
    release.publish(stores, "api", push_image(ecr, "api", "2"))
    counted(stores).clear()
    assert not views.promotion(stores, "stage").changes.empty
    assert counted(stores) == Counter({"s3.GetObject": 1, "ssm.GetParametersByPath": 1})


def test_status_at_a_time_reads_one_listing_page(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    for _ in range(5):
        release.prepare(stores, "stage", "again", force=True)
        deploy.deploy(stores, "stage")
    counted(stores).clear()
    [status] = views.status(stores, ["stage"], at=datetime(2999, 1, 1, tzinfo=UTC))
    assert status.deployed is not None and status.deployed.version == 5
    assert sum(counted(stores).values()) <= 12, counted(stores)
    assert counted(stores)["s3.ListObjectsV2"] == 1


def test_status_reads_one_state_per_environment(stores: Stores) -> None:
    """What runs, the lock and the last failed attempt all come from the state."""
    released(stores)
    released(stores, environment="prod")
    counted(stores).clear()
    views.status(stores)
    assert counted(stores) == Counter({"s3.GetObject": 2})


def test_status_of_a_failed_newest_deploy_reads_only_its_state(stores: Stores) -> None:
    """The deploy that failed left who ran it and why in the state as it released its lock."""
    failed_to_deploy(stores)
    counted(stores).clear()
    [stage] = views.status(stores, ["stage"])
    assert stage.last_attempt is not None and stage.last_attempt.outcome == "failed"
    assert counted(stores) == Counter({"s3.GetObject": 1})


def test_status_of_a_locked_environment_reads_only_its_state(stores: Stores) -> None:
    died_holding_the_lock(stores)
    counted(stores).clear()
    views.status(stores, ["stage"])
    assert counted(stores) == Counter({"s3.GetObject": 1})


def test_status_of_an_environment_without_state_looks_for_its_first_manifest(
    stores: Stores,
) -> None:
    counted(stores).clear()
    views.status(stores, ["stage"])
    assert counted(stores) == Counter(
        {"s3.GetObject": 1, "s3.ListObjectsV2": 1, "s3.HeadObject": 1}
    )


@pytest.mark.parametrize("days", [30, 5])
def test_the_board_reads_one_state_per_environment_when_it_remembers_the_window(
    stores: Stores, days: int
) -> None:
    """Each state remembers its newest deployments (who, why, how each ended): when they reach
    back past the window, they are all the board needs."""
    six_weeks_of_releases(stores, BOARD_NOW)
    counted(stores).clear()
    board.gather(stores, days)
    assert counted(stores) == Counter({"s3.GetObject": 2})


@pytest.mark.parametrize("days,periods", [(30, 2), (5, 1)])
def test_a_board_of_states_that_remember_no_deployments_reads_the_periods_of_the_window(
    stores: Stores, days: int, periods: int
) -> None:
    """States rebuilt by `repair` remember nothing: the index of each 32-day period the window
    overlaps says the rest, and the board is the same."""
    six_weeks_of_releases(stores, BOARD_NOW)
    remembered = board.gather(stores, days)
    for environment in ("stage", "prod"):
        stores.states.update(environment, lambda state: replace(state, recent=()))
    counted(stores).clear()
    assert board.gather(stores, days) == remembered
    assert counted(stores) == Counter({"s3.GetObject": 2 + 2 * periods})


@pytest.mark.parametrize("days,periods,records,manifests", [(30, 2, 4, 4), (5, 1, 1, 3)])
def test_a_board_without_indexes_reads_what_the_window_shows(
    stores: Stores, days: int, periods: int, records: int, manifests: int
) -> None:
    """A project older than the indexes, its states remembering nothing: each record in the
    window and each manifest shown is read, once, and the board is the same. 30 days: four
    deployments of four manifests; 5 days: stage's failed v3, and the manifests that run
    (stage v2, prod v3)."""
    six_weeks_of_releases(stores, BOARD_NOW)
    remembered = board.gather(stores, days)
    for environment in ("stage", "prod"):
        stores.states.update(environment, lambda state: replace(state, recent=()))
        drop_indexes(stores, environment)
    counted(stores).clear()
    assert board.gather(stores, days) == remembered
    assert counted(stores) == Counter(
        {"s3.GetObject": 2 + 2 * periods + records + manifests, "s3.ListObjectsV2": 2}
    )


@pytest.mark.parametrize("images", [1, 10, 21])
def test_the_external_program_reads_ten_at_a_time_plus_the_version(
    stores: Stores, images: int
) -> None:
    publish_many(stores, images)
    release.apply(stores, "stage", "first")
    session = external.session_for(REGION)
    result = external.read_release("catalogue", "stage", session)
    assert len(result) == images + 1
    assert sum(session.requests.values()) == math.ceil(images / 10) + 1, session.requests


def test_publishing_an_ecr_image_checks_it_with_one_more_request(stores: Stores) -> None:
    push_image(boto3.client("ecr", region_name=REGION), "api", "one")
    counted(stores).clear()
    release.publish(stores, "api", ecr_image("api", "one"))
    assert counted(stores) == Counter({"ecr.DescribeImages": 1, "ssm.PutParameter": 1})


def task_definition(ecs: Any, family: str) -> str:
    """A task definition whose one container, api, runs image("api", "one")."""
    api = {"name": "api", "image": image("api", "one"), "memory": 128}
    answer = ecs.register_task_definition(family=family, containerDefinitions=[api])
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def ecs_cluster(cluster: str, services: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`services` services in `cluster`, rolled out, all on one task definition (family: the
    cluster) running image("api", "one")."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")  # moto: COMPLETED when ≥ desiredCount
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName=cluster)
    arn = task_definition(ecs, cluster)
    names = [f"{cluster}-{n:02d}" for n in range(services)]
    for name in names:
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=arn, desiredCount=1)
    return [f"{cluster}/{name}" for name in names]


def no_second_poll(seconds: float) -> None:
    pytest.fail("the services were rolled out: one poll is enough")


@pytest.mark.parametrize(
    "clusters,describes",
    [((1,), 1), ((10,), 1), ((11,), 2), ((11, 3), 3), ((25, 10), 4)],
)
def test_one_ecs_poll_describes_ten_services_a_request_per_cluster_and_each_task_definition_once(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, clusters: tuple[int, ...], describes: int
) -> None:
    """Σ ⌈S_c/10⌉ DescribeServices, one DescribeTaskDefinition per distinct task definition."""
    assert stores.session is not None
    services = [
        service
        for n, count in enumerate(clusters)
        for service in ecs_cluster(f"cluster{n}", count, monkeypatch)
    ]
    counted(stores).clear()
    ecs = EcsServices(stores.session)
    release = {"api": image("api", "one")}
    checks = check_rollouts(ecs, services, release, 900, Quiet(), sleep=no_second_poll)
    assert len(checks) == len(services) and all(check.ok for check in checks)
    assert counted(stores) == Counter(
        {"ecs.DescribeServices": describes, "ecs.DescribeTaskDefinition": len(clusters)}
    )


def test_a_second_ecs_poll_describes_only_the_services_still_rolling_out(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """11 services done and 1 stuck (one cluster): 2 requests, then 1; the stuck service's task
    definition is never read."""
    assert stores.session is not None
    services = ecs_cluster("main", 11, monkeypatch)
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    ecs = boto3.client("ecs", region_name=REGION)
    stuck = task_definition(ecs, "stuck")
    ecs.create_service(cluster="main", serviceName="stuck", taskDefinition=stuck, desiredCount=1)
    counted(stores).clear()
    now = [0.0]
    with pytest.raises(GateFailed, match="main/stuck"):
        check_rollouts(
            EcsServices(stores.session),
            [*services, "main/stuck"],
            {"api": image("api", "one")},
            timeout=1,
            progress=Quiet(),
            sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
            clock=lambda: now[0],
        )
    assert counted(stores) == Counter({"ecs.DescribeServices": 3, "ecs.DescribeTaskDefinition": 1})


def test_help_and_version_do_not_import_boto3() -> None:
    for args in (["--help"], ["--version"]):
        code = (
            "import sys\n"
            "from tf_release.faces.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


class NoChanges:
    """A Terraform run with nothing to change: only tf-release's own requests are counted."""

    def plan(self) -> PlanSummary:
        return PlanSummary()

    def apply(self) -> None:
        pass


def test_a_terraform_deploy_checks_its_lock_with_one_state_write_and_one_state_read(
    stores: Stores,
) -> None:
    """Before apply the lock records its phase (a compare-and-swap); before the record, a read
    proves the lock is still ours. SSM-only deploys make neither."""
    publish_many(stores, 10)
    release.apply(stores, "stage", "first")
    costs = []
    for tag, terraform in (("two", None), ("three", NoChanges())):
        release.publish(stores, "svc000", image("svc000", tag))
        release.prepare(stores, "stage", tag)
        counted(stores).clear()
        deploy.deploy(stores, "stage", options=deploy.DeployOptions(terraform=terraform))
        costs.append(Counter(counted(stores)))
    ssm_only, with_terraform = costs
    assert with_terraform - ssm_only == Counter({"s3.PutObject": 1, "s3.GetObject": 1}), costs
    assert ssm_only - with_terraform == Counter()


@pytest.mark.parametrize("repositories", [1, 3])
def test_a_prepare_resolves_digests_with_one_request_per_changed_ecr_repository(
    stores: Stores, repositories: int
) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    for n in range(repositories):
        release.publish(stores, f"svc{n}", push_image(ecr, f"svc{n}", "one"))
    counted(stores).clear()
    stores.__dict__.pop("caller", None)
    prepared = release.prepare(stores, "stage", "pinned")
    assert prepared.manifest is not None and len(prepared.manifest.digests) == repositories
    assert counted(stores)["ecr.DescribeImages"] == repositories
    # one page by path, +4 as ever, and the look into a new environment
    assert sum(counted(stores).values()) == 1 + 5 + NEW_ENVIRONMENT.total() + repositories


def with_rules(stores: Stores, moment: datetime, **rules: Any) -> Stores:
    """prod with release rules (rules.py keys), and the clock stopped at `moment`."""
    from tf_release.model.rules import load_rules

    prod = replace(stores.config.environments["prod"], rules=load_rules(rules, "prod"))
    environments = {**stores.config.environments, "prod": prod}
    stores.config = replace(stores.config, environments=environments)
    stores.clock = lambda: moment
    return stores


def test_a_promotion_held_by_soak_reads_two_states_and_writes_nothing(stores: Stores) -> None:
    """The target's state (its lock, what runs), the look into a new environment, and the
    source's state: then it stops; no PUT, no lock."""
    publish_many(stores, 10)
    stores.clock = lambda: datetime(2026, 3, 24, 10, tzinfo=UTC)
    release.apply(stores, "stage", "first")
    with_rules(stores, datetime(2026, 3, 24, 11, tzinfo=UTC), soak="2h")
    counted(stores).clear()
    with pytest.raises(HeldByPolicy):
        release.apply(stores, "prod", "promote")
    assert counted(stores) == Counter({"s3.GetObject": 2}) + NEW_ENVIRONMENT


def test_an_apply_reads_the_environments_state_once(stores: Stores) -> None:
    """Its lock check, the prepare and the deploy share one read: the state's ETag is chained
    through the manifest's number, the lock, and its release."""
    publish_many(stores, 3)
    release.apply(stores, "stage", "first")
    publish_many(stores, 3, tag="two")
    counted(stores).clear()
    release.apply(stores, "stage", "second")
    assert counted(stores)["s3.GetObject"] == 1 + 2  # + the version's index and the period's
    # the version's index, manifest, state, lock, record, the two indexes, release
    assert counted(stores)["s3.PutObject"] == 8


def test_a_rollback_reads_the_environments_state_once(stores: Stores) -> None:
    publish_many(stores, 3)
    release.apply(stores, "stage", "first")
    publish_many(stores, 3, tag="two")
    release.apply(stores, "stage", "second")
    counted(stores).clear()
    release.rollback(stores, "stage", "second is broken")
    # the state, the two manifests the walk back to the target reads (v2, then v1), and as it
    # ends the indexes of the rollback, of the version it reverted, and of the period
    assert counted(stores)["s3.GetObject"] == 1 + 2 + 3


def test_a_frozen_prepare_makes_no_request(stores: Stores) -> None:
    with_rules(stores, datetime(2026, 3, 28, 12, tzinfo=UTC), freeze=["Fri 16:00 - Mon 08:00"])
    counted(stores).clear()
    with pytest.raises(HeldByPolicy):
        release.prepare(stores, "prod", "promote")
    assert counted(stores) == Counter()


def test_a_deploy_into_an_environment_with_a_soak_time_reads_the_source_state_once_more(
    stores: Stores,
) -> None:
    publish_many(stores, 10)
    stores.clock = lambda: datetime(2026, 3, 24, 10, tzinfo=UTC)
    release.apply(stores, "stage", "first")
    release.prepare(stores, "prod", "promote")
    counted(stores).clear()
    stores.__dict__.pop("caller", None)
    deploy.deploy(stores, "prod")
    without = counted(stores)["s3.GetObject"]
    release.apply(stores, "stage", "again", force=True)
    release.prepare(stores, "prod", "promote", force=True)
    with_rules(stores, datetime(2026, 3, 24, 13, tzinfo=UTC), soak="2h")
    counted(stores).clear()
    stores.__dict__.pop("caller", None)
    deploy.deploy(stores, "prod")
    assert counted(stores)["s3.GetObject"] == without + 1, counted(stores)
