"""Whether a release into an environment is held by its rules (rules.py): gathers the facts
(the clock, what the source environment runs) and enforces the answer before anything is written.

An override lets a holding rule through and is returned, to be kept on the deployment record;
an override of a rule that does not hold is accepted and not recorded.
"""

from collections.abc import Mapping
from datetime import datetime

from tf_release.model.config import Environment
from tf_release.model.errors import HeldByPolicy
from tf_release.model.rules import Hold, Overrides
from tf_release.model.state import Deployed, Override
from tf_release.stores.bundle import Stores

OVERRIDE_MARK = "-override"  # ends the id of a deploy that went past a rule: seen in listings


def promoted_since(
    source: Deployed | None,
    images: Mapping[str, str],
    digests: Mapping[str, str],
    running: Deployed | None,
) -> dict[str, datetime | None]:
    """For each image a release changes in the target (`running` there now), since when the
    source has run it at that digest; None where the source does not run it."""
    changing = {
        name: url
        for name, url in images.items()
        if running is None or not running.runs(name, url, digests.get(name))
    }
    return {
        name: source.running_since(name)
        if source is not None and source.runs(name, url, digests.get(name))
        else None
        for name, url in changing.items()
    }


def soaked_in(
    stores: Stores, env: Environment, source: str, running: Deployed | None = None
) -> tuple[str, Deployed | None]:
    """Where a release into ENV soaks, and what runs there now: always its promote_from, whatever
    the images were taken from (`--from`, a manifest's `source` such as "dev@v3"). `running`:
    what `source` runs, when the caller has read it. Read only when ENV has a soak time."""
    name = env.promote_from
    if env.rules.soak is None:
        return name, None
    if running is not None and source.split("@", 1)[0] == name:
        return name, running
    return name, stores.states.get(name)[0].deployed


def check(
    stores: Stores, env: Environment, hold: Hold | None, overrides: Overrides
) -> tuple[Override, ...]:
    """Refuse a held release (exit 5), unless its rule is overridden: then the override to
    record."""
    if hold is None:
        return ()
    if hold.rule not in overrides.rules:
        raise HeldByPolicy(hold.refusal(env.name), hold.to_document())
    return (Override(hold.rule, overrides.reason, stores.caller),)


def freeze(stores: Stores, env: Environment, overrides: Overrides) -> tuple[Override, ...]:
    """The freeze, checked first: it needs no request."""
    return check(stores, env, frozen(stores, env), overrides)


def soak(
    stores: Stores,
    env: Environment,
    source: str,
    since: Mapping[str, datetime | None],
    overrides: Overrides,
) -> tuple[Override, ...]:
    return check(stores, env, soaking(stores, env, source, since), overrides)


def soaking(
    stores: Stores, env: Environment, source: str, since: Mapping[str, datetime | None]
) -> Hold | None:
    """The soak holding these images now; the clock is read only for an environment with one."""
    return env.rules.soaking(source, since, stores.clock()) if env.rules.soak else None


def frozen(stores: Stores, env: Environment) -> Hold | None:
    """The freeze holding ENV now; the clock is read only for an environment with windows."""
    return env.rules.frozen(stores.clock()) if env.rules.freeze else None
