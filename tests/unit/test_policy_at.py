"""`tf-release policy --at TIME`: a rule's verdict at a past time is judged on what ran then."""

from dataclasses import replace
from datetime import UTC, datetime

from tests.support.project import image
from tf_release import release, views
from tf_release.rules import load_rules
from tf_release.stores import Stores


def at(hour: int) -> datetime:
    return datetime(2026, 3, 24, hour, tzinfo=UTC)


def test_soak_at_a_past_time_counts_from_what_the_source_ran_then(stores: Stores) -> None:
    """stage ran api:one from 10:00 and api:two from 13:00; at 11:00 prod's 2h soak held until
    12:00, whatever stage runs now."""
    prod = replace(stores.config.environments["prod"], rules=load_rules({"soak": "2h"}, "prod"))
    stores.config = replace(
        stores.config, environments={**stores.config.environments, "prod": prod}
    )
    for hour, tag in ((10, "one"), (13, "two")):
        stores.clock = lambda hour=hour: at(hour)
        release.publish(stores, "api", image("api", tag))
        release.apply(stores, "stage", tag)
    stores.clock = lambda: at(14)
    [soak] = views.rules(stores, "prod", at(11))
    assert soak.hold is not None and soak.hold.until == at(12)
    [soak] = views.rules(stores, "prod")
    assert soak.hold is not None and soak.hold.until == at(15)
