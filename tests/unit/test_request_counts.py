"""The AWS requests each operation makes, counted exactly (botocore's before-send events), so
that costs never grow with history. Timings live in `make bench`, not here."""

import math
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import boto3
import pytest

from tests.support.project import REGION, ecr_image, image, push_image
from tf_release import deploy, external, release, views
from tf_release.stores import Stores
from tf_release.terraform import PlanSummary


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


@pytest.mark.parametrize("images", [1, 10, 11, 25])
def test_prepare_reads_the_source_ten_at_a_time_and_does_four_more(
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
    assert sum(counted(stores).values()) == math.ceil(images / 10) + 4, counted(stores)


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
    assert sum(counted(stores).values()) == pages + 4


def test_a_selective_prepare_reads_only_the_images_named(stores: Stores) -> None:
    publish_many(stores, 25)
    release.apply(stores, "stage", "first")
    counted(stores).clear()
    release.prepare(stores, "stage", "x", images=["svc001", "svc002"], force=True)
    assert counted(stores)["ssm.GetParameters"] == 1
    assert "ssm.GetParametersByPath" not in counted(stores)


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
    assert sum(requests.values()) <= math.ceil(images / 10) + changing + 8, requests


def test_history_of_twenty_does_not_depend_on_how_many_manifests_exist(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    seed_manifests(stores, "stage", 45)
    deploy.deploy(stores, "stage")
    counted(stores).clear()
    entries = views.history(stores, "stage", limit=20)
    assert [e.manifest.version for e in entries] == list(range(45, 25, -1))
    assert sum(counted(stores).values()) <= 25, counted(stores)
    assert counted(stores)["s3.ListObjectsV2"] <= 1


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


def test_help_and_version_do_not_import_boto3() -> None:
    for args in (["--help"], ["--version"]):
        code = (
            "import sys\n"
            "from tf_release.cli import main\n"
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
