"""Soak is counted in the environment a release promotes from, on what it ran and since when,
whatever a manifest was taken from and whenever the question is asked."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.project import BUCKET, PROJECT, REGION, UNCHECKED, image
from tf_release.flows import deploy, release, views
from tf_release.model.errors import HeldByPolicy
from tf_release.model.rules import Overrides
from tf_release.stores.bundle import Stores

CONFIG = f"""\
project = "{PROJECT}"
bucket  = "{BUCKET}"
region  = "{REGION}"

[environments.dev]
promote_from = "latest"

[environments.stage]
promote_from = "dev"

[environments.prod]
promote_from = "stage"
soak = "2h"
{UNCHECKED}"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tf-release.toml"
    path.write_text(CONFIG)
    return path


def at(stores: Stores, hour: int, minute: int = 0) -> datetime:
    moment = datetime(2026, 3, 24, hour, minute, tzinfo=UTC)
    stores.clock = lambda: moment
    return moment


def released(stores: Stores, environment: str, hour: int, tag: str = "1.0") -> None:
    at(stores, hour)
    release.publish(stores, "api", image("api", tag))
    release.apply(stores, environment, tag)


def test_a_promotion_taken_from_another_environment_still_soaks_in_promote_from(
    stores: Stores,
) -> None:
    """dev ran api since 08:00, stage since 10:00: at 11:00 prod's soak holds whatever
    `--from` says, in prepare, diff and the deploy of a manifest prepared past it."""
    released(stores, "dev", 8)
    released(stores, "stage", 10)
    at(stores, 11)
    with pytest.raises(HeldByPolicy, match=r"stage has run api for 1h of 2h"):
        release.prepare(stores, "prod", "early", source="dev")
    promotion = views.promotion(stores, "prod", "dev")
    assert promotion.hold is not None and promotion.hold.detail == "stage has run api for 1h of 2h"
    past = Overrides.of(["soak"], "rehearsal")
    prepared = release.prepare(stores, "prod", "early", source="dev", overrides=past)
    assert prepared.manifest is not None and prepared.manifest.source == "dev@v1"
    with pytest.raises(HeldByPolicy, match=r"stage has run api for 1h of 2h"):
        deploy.deploy(stores, "prod", prepared.manifest.version)


def test_soak_at_a_past_time_counts_from_what_the_source_ran_then(stores: Stores) -> None:
    """stage ran api 1.0 from 10:00 and 2.0 from 13:00; at 11:00 prod's 2h soak held until
    12:00, whatever stage runs now."""
    released(stores, "dev", 9)
    released(stores, "stage", 10)
    released(stores, "dev", 12, "2.0")
    released(stores, "stage", 13, "2.0")
    now = at(stores, 14)
    [soak] = views.rules(stores, "prod", datetime(2026, 3, 24, 11, tzinfo=UTC))
    assert soak.hold is not None and soak.hold.until == datetime(2026, 3, 24, 12, tzinfo=UTC)
    [soak] = views.rules(stores, "prod")
    assert soak.hold is not None and soak.hold.until == now.replace(hour=15)


def test_soak_at_a_past_time_counts_images_carried_unchanged_through_later_deploys(
    stores: Stores,
) -> None:
    """stage ran api from 08:00, added worker at 12:00 and redeployed both at 13:30: at 14:15
    worker had run 2h15m, so prod's 2h soak was clear then, as it was live."""
    released(stores, "dev", 7)
    released(stores, "stage", 8)
    at(stores, 12)
    release.publish(stores, "worker", image("worker", "1.0"))
    release.apply(stores, "dev", "worker")
    release.apply(stores, "stage", "worker")
    at(stores, 13, 30)
    release.apply(stores, "stage", "again", force=True)
    at(stores, 14, 15)
    [live] = views.rules(stores, "prod")
    assert live.hold is None
    at(stores, 16)
    [then] = views.rules(stores, "prod", datetime(2026, 3, 24, 14, 15, tzinfo=UTC))
    assert then.hold is None
