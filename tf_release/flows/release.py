"""The release flows: publish, prepare, apply and rollback (deploy.py deploys, views.py reads).

Plain functions over a `Stores` bundle, usable without the CLI. Every check of the request runs
before the first write, so bad input never leaves anything behind.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from tf_release.flows import approvals, holds
from tf_release.flows.deploy import (
    DeployOptions,
    DeployResult,
    check_images_exist,
    deploy_manifest,
)
from tf_release.flows.locks import wait_unlocked
from tf_release.model import naming
from tf_release.model.errors import BadInput, Cancelled, ImagesMissing
from tf_release.model.index import VersionUse
from tf_release.model.manifest import ImageChanges, Manifest, compare_images, images_digest
from tf_release.model.rules import CLEAR, NO_OVERRIDES, Hold, Overrides
from tf_release.model.state import Deployed, EnvironmentState, Override
from tf_release.stores.bundle import Stores, manifest_of, state_to_write, used_index


@dataclass(frozen=True)
class Prepared:
    environment: str
    manifest: Manifest | None  # None: the environment already runs exactly these images
    changes: ImageChanges
    deployed_version: int | None
    reused: bool = False  # the newest manifest already held these images and never ran
    holds: tuple[Hold, ...] = ()  # rules that held it (and were overridden)
    overridden: tuple[Override, ...] = ()
    # the environment's state and ETag as prepare left them: a deploy next need not read it
    state: tuple[EnvironmentState, str | None] | None = field(
        default=None, compare=False, repr=False
    )

    def to_document(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "policy": self.holds[0].to_document() if self.holds else CLEAR,
            "overrides": [item.to_document() for item in self.overridden],
            "created": self.manifest is not None and not self.reused,
            "reused": self.reused,
            "version": self.manifest.name if self.manifest else None,
            "deployed_version": naming.format_optional_version(self.deployed_version),
            "changes": self.changes.to_document(),
            "manifest": self.manifest.to_document() if self.manifest else None,
        }


@dataclass(frozen=True)
class Source:
    """Where a manifest's images come from: a label's SSM parameters (`name` "latest"), or the
    manifest an environment runs (`name` "stage@v5", with the digests it ran)."""

    name: str
    images: dict[str, str]
    digests: dict[str, str] = field(default_factory=dict)
    running: Deployed | None = None  # the source environment's deployment (soak counts on it)


@dataclass(frozen=True)
class RolledBack:
    """A rollback: the version whose images come back, and the new version that brought them
    (None when the environment already runs them, and nothing was done)."""

    environment: str
    target: Manifest
    manifest: Manifest | None
    result: DeployResult | None
    frozen: Hold | None = None  # a freeze holds the environment: rollbacks go through it

    def policy(self) -> dict[str, Any]:
        if self.frozen is None:
            return CLEAR
        return {
            **self.frozen.to_document(),
            "held": False,
            "note": "rollbacks are allowed during a freeze",
        }

    def to_document(self) -> dict[str, Any]:
        if self.result is not None:
            return {
                **self.result.to_document(),
                "rolled_back_to": self.target.name,
                "policy": self.policy(),
            }
        return {
            "environment": self.environment,
            "version": None,
            "outcome": "unchanged",
            "deployment": None,
            "changes": ImageChanges(unchanged=dict(self.target.images)).to_document(),
            "terraform": None,
            "rolled_back_to": self.target.name,
            "policy": self.policy(),
        }


# Step 1: build → artefact


def publish(
    stores: Stores, image: str, url: str, label: str = naming.LATEST, check_image: bool = True
) -> str:
    """Point `/{project}/image_ids/{label}/{image}` at a freshly pushed image (checked in its
    registry, so that a typo in a tag never becomes a release)."""
    stores.config.check_image(image)
    naming.check_image_url(url)
    stores.config.check_publish_label(label)
    if check_image and stores.registry.missing([url]):
        raise ImagesMissing(
            f"{url} does not exist in {naming.registry_of(url)}: push it first (or pass "
            "--skip-image-check)"
        )
    stores.images.put(label, image, url)
    return naming.image_parameter(stores.config.project, label, image)


def _agree(url: str) -> bool:
    return True


def retire(
    stores: Stores,
    image: str,
    label: str = naming.LATEST,
    confirm: Callable[[str], bool] = _agree,
) -> str:
    """Take an image out of a label, so that the next promotion from it removes the image from
    the environment; `confirm` sees the URL it holds first. Returns that URL."""
    naming.check_image_name(image)
    stores.config.check_publish_label(label)
    held = stores.images.read_named(label, [image])
    if image not in held:
        where = naming.image_path(stores.config.project, label)
        raise BadInput(f"no image {image} in {where}: nothing to retire")
    if not confirm(held[image]):
        raise Cancelled(f"{image} left in {label}")
    stores.images.replace(label, held, {})
    return held[image]


# Step 2: artefacts → release manifest


def prepare(
    stores: Stores,
    environment: str,
    reason: str,
    images: Iterable[str] = (),
    source: str | None = None,
    force: bool = False,
    check_images: bool = False,
    overrides: Overrides = NO_OVERRIDES,
    current: tuple[EnvironmentState, str | None] | None = None,
) -> Prepared:
    """Create the next manifest from the source; with `images`, take only those.

    A retry reuses the newest manifest when it holds exactly these images and never ran, so
    failed or plan-only attempts leave no trail of identical versions (`force` writes anew).
    With `check_images`, the images are checked in ECR before anything is written. A freeze or
    soak of the environment refuses it (HeldByPolicy) unless `overrides` names the rule.
    `current`: the environment's state and ETag, when the caller has read them.
    """
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason)
    selected = [stores.config.check_image(name) for name in images]
    label = env.promote_from if source is None else stores.config.check_label(source)
    if label == environment:
        raise BadInput(f"cannot prepare {environment} from its own images")
    frozen = holds.frozen(stores, env)
    overridden = holds.check(stores, env, frozen, overrides)  # before any request

    with stores.progress.step(f"preparing {environment} from {label}"):
        taken = source_images(stores, label, selected)
        current = current or state_to_write(stores, environment)
        state = current[0]
        deployed = state.deployed_images
        wanted = (
            {**deployed, **{name: taken.images[name] for name in selected}}
            if selected
            else taken.images
        )
        deployed_version = state.deployed.version if state.deployed else None
        if check_images:
            check_images_exist(stores, state, wanted)  # those running are not asked
        digests = _digests(stores, wanted, state, taken)
        changes = compare_images(
            deployed, state.deployed.digests if state.deployed else {}, wanted, digests
        )
        held: tuple[Hold, ...] = (frozen,) if frozen else ()
        if changes.empty and not force:
            return Prepared(environment, None, changes, deployed_version, False, held, overridden)
        soak_source, soak_running = holds.soaked_in(stores, env, label, taken.running)
        since = holds.promoted_since(soak_running, wanted, digests, state.deployed)
        soaking = holds.soaking(stores, env, soak_source, since)
        overridden += holds.check(stores, env, soaking, overrides)
        held += (soaking,) if soaking else ()
        newest = None if force else _unused_newest(stores, environment, state, wanted, digests)
        if newest is not None:
            return Prepared(
                environment, newest, changes, deployed_version, True, held, overridden, current
            )
        manifest, after, reused = _create_manifest(
            stores, environment, wanted, reason, taken.name, current, digests=digests,
            reuse=not force,
        )  # fmt: skip
    return Prepared(
        environment, manifest, changes, deployed_version, reused, held, overridden, after
    )


def _digests(
    stores: Stores, images: dict[str, str], state: EnvironmentState, taken: Source
) -> dict[str, str]:
    """The digest each image names: known without asking (see `known_digests`), else asked of
    its registry (ECR: one request per repository; others: one HEAD per image). Images their
    registry cannot resolve, or is configured not to be asked about, are left unpinned."""
    digests, ask = known_digests(images, state.deployed, taken, stores.config.checks)
    if ask:
        with stores.progress.step(f"resolving {len(ask)} image(s) to their digests"):
            resolved = stores.registry.digests(images[name] for name in ask)
        digests.update({name: resolved[images[name]] for name in ask if images[name] in resolved})
    return digests


def known_digests(
    images: dict[str, str],
    deployed: Deployed | None,
    taken: Source,
    checks: Callable[[str], bool],
) -> tuple[dict[str, str], list[str]]:
    """The digests known without asking a registry: what the source environment ran for an
    image promoted from it (a moved tag is then a change), what runs for an image that stays;
    and the images whose digest only their registry knows (those it `checks`). `diff` shows
    what `prepare` would record by it."""
    digests: dict[str, str] = {}
    ask = []
    for name, url in images.items():
        if taken.images.get(name) == url and name in taken.digests:
            digests[name] = taken.digests[name]  # what the source environment ran
        elif deployed and deployed.images.get(name) == url:
            if name in deployed.digests:  # an image that stays keeps how it ran, pinned or not
                digests[name] = deployed.digests[name]
        elif checks(url):  # a registry configured `check = false` leaves it unpinned
            ask.append(name)
    return digests, ask


def source_images(stores: Stores, label: str, selected: list[str]) -> Source:
    """The images a manifest can take from a label: the selected ones, or all.

    An environment's images are those of the manifest it runs (its state in S3), never its SSM
    parameters, which a running, killed or failed deploy (or a hand edit) may have changed.
    Other labels are read from SSM: names known from the allow-list ten a request, otherwise
    by path (one more request after a full page).
    """
    if label in stores.config.environments:
        running = stores.states.get(label)[0].deployed
        if running is None:
            raise BadInput(f"{label} has nothing deployed yet: deploy it before promoting from it")
        found = Source(
            f"{label}@{naming.format_version(running.version)}",
            dict(running.images),
            dict(running.digests),
            running,
        )
        where = f"{label}'s deployed manifest {naming.format_version(running.version)}"
    else:
        if selected or stores.config.images is not None:
            available = stores.images.read_named(label, selected or stores.config.images or ())
        else:
            available = stores.images.read(label)
        found = Source(label, available)
        where = (
            f"{naming.image_path(stores.config.project, label)} in {stores.images.where(label)} "
            f"(release bucket {stores.config.bucket})"
        )
    missing = [name for name in selected if name not in found.images]
    if missing:
        raise BadInput(f"no image {', '.join(missing)} in {where}: publish it first")
    if not found.images:
        raise BadInput(
            f"no images under {where}: publish some first (or check --region and `region` in "
            f"{stores.config.path.name}, if they were published elsewhere)"
        )
    return found


def _unused_newest(
    stores: Stores,
    environment: str,
    state: EnvironmentState,
    images: dict[str, str],
    digests: dict[str, str],
) -> Manifest | None:
    """The newest manifest, when it holds exactly `images` and no deploy of it succeeded.

    The state's digest of the newest manifest's images answers most calls with no request."""
    newest = state.latest_version
    if state.latest_images != images_digest(images, digests):
        return None
    if state.deployed is not None and state.deployed.version == newest:
        return None
    manifest = stores.manifests.get(environment, newest)
    if manifest is None or (manifest.images, manifest.digests) != (images, digests):
        return None
    return None if _ever_succeeded(stores, environment, manifest) else manifest


def _ever_succeeded(stores: Stores, environment: str, manifest: Manifest) -> bool:
    """Whether a deploy of this manifest ever succeeded: its index says, else the listing, which
    stops where the manifest was written (no deploy of it finished before)."""
    use = used_index(stores, environment, manifest)
    if use is not None:
        return any(entry.outcome == "succeeded" for entry in use.deployments)
    for entry in stores.deployments.entries(environment):
        if entry.finished_at < manifest.created_at:
            return False
        if entry.version == manifest.version and entry.outcome == "succeeded":
            return True
    return False


def _create_manifest(
    stores: Stores,
    environment: str,
    images: dict[str, str],
    reason: str,
    source: str,
    current: tuple[EnvironmentState, str | None],
    reverts: int | None = None,
    digests: dict[str, str] | None = None,
    reuse: bool = False,
) -> tuple[Manifest, tuple[EnvironmentState, str | None], bool]:
    """The next manifest, and the environment's state and ETag once it names it as the newest.
    With `reuse`, a manifest another writer just took the number for is used instead when it
    holds these very images from the same source and never ran (True says so)."""
    created_by = stores.caller
    created_at = stores.clock()

    def build(version: int) -> Manifest:
        return Manifest(
            project=stores.config.project,
            environment=environment,
            version=version,
            images=images,
            reason=reason,
            created_at=created_at,
            created_by=created_by,
            source=source,
            reverts=reverts,
            digests=dict(digests or {}),
        )

    def same(taken: Manifest) -> bool:
        held = (taken.images, taken.digests, taken.source, taken.reverts)
        if held != (images, digests or {}, source, reverts):
            return False
        return not _ever_succeeded(stores, environment, taken)

    def begin(manifest: Manifest) -> None:
        stores.index.begin_version(
            VersionUse(manifest.project, environment, manifest.version, manifest.created_at)
        )

    manifest, reused = stores.manifests.create_next(
        build, after=current[0].latest_version, same=same if reuse else None, first=begin
    )
    if reused:  # its writer names it in the state
        return manifest, current, True
    digest = images_digest(images, digests or {})
    after = stores.states.update(
        environment, lambda s: s.with_latest(manifest.version, digest), current=current
    )
    return manifest, after, False


# Steps 2 and 3 together, and rollback (deploy.py deploys)


def apply(
    stores: Stores,
    environment: str,
    reason: str,
    images: Iterable[str] = (),
    force: bool = False,
    options: DeployOptions = DeployOptions(),
) -> tuple[Prepared, DeployResult | None]:
    """Prepare and deploy in one step; nothing is deployed when nothing would change."""
    env = stores.config.environment(environment)
    current = wait_unlocked(
        stores, environment, state_to_write(stores, environment), options.lock_timeout
    )
    prepared = prepare(
        stores,
        environment,
        reason,
        images,
        force=force,
        check_images=options.check_images,
        overrides=options.overrides,
        current=current,
    )
    if prepared.manifest is None:
        return prepared, None
    # prepare checked the images, the freeze and the soak before writing; approvals can only
    # come now that the manifest exists: held, it waits for `approve`, then `deploy --version`
    gone_past, standing = approvals.enforce(stores, env, prepared.manifest, options.overrides)
    checked = replace(
        options,
        check_images=False,
        overridden=prepared.overridden + gone_past,
        approved=standing.counted if standing else (),
    )
    return prepared, deploy_manifest(
        stores, env, prepared.manifest, prepared.state or current, checked
    )


def rollback(
    stores: Stores,
    environment: str,
    reason: str,
    to: int | None = None,
    options: DeployOptions = DeployOptions(),
) -> RolledBack:
    """Write an old manifest again under a new version, and deploy that.

    Safe to repeat: a version a rollback reverted is never again a default target, and when the
    target's images are what runs, nothing is done. Its images are checked before the new
    manifest is written, so images that ECR has expired stop the rollback before anything changes.
    Release rules never hold a rollback: it is the way out of trouble, in a freeze too.
    """
    env = stores.config.environment(environment)
    frozen = holds.frozen(stores, env)
    reason = naming.check_reason(reason)
    current = wait_unlocked(
        stores, environment, state_to_write(stores, environment), options.lock_timeout
    )
    state = current[0]
    if to is not None:
        old = manifest_of(stores, environment, to)
        _check_ran(stores, environment, state, old)
    else:
        old = _rollback_target(stores, environment, state)
    if state.deployed is not None and old.held(env.pin_digests) == state.held_images:
        return RolledBack(environment, old, None, None, frozen)
    if options.check_images:
        check_images_exist(stores, state, old.held(env.pin_digests))
    reverts = state.deployed.version if state.deployed else None
    retried = _unused_newest(stores, environment, state, old.images, old.digests)
    if retried is not None and retried.reverts == reverts:  # a failed rollback, tried again
        manifest, after = retried, current
    else:
        manifest, after, _ = _create_manifest(
            stores, environment, old.images, reason, old.name, current, reverts, old.digests
        )
    result = deploy_manifest(stores, env, manifest, after, replace(options, check_images=False))
    return RolledBack(environment, old, manifest, result, frozen)


def _check_ran(
    stores: Stores, environment: str, state: EnvironmentState, manifest: Manifest
) -> None:
    """A rollback goes back to what ran: a manifest that never did is not let past the release
    rules under a rollback's name."""
    running = state.deployed is not None and state.deployed.version == manifest.version
    if running or _ever_succeeded(stores, environment, manifest):
        return
    name = manifest.name
    raise BadInput(
        f"{environment} never ran {name} (no deploy of it succeeded), so there is nothing to roll "
        f"back to: deploy it with `tf-release deploy --env {environment} --version {name}`"
    )


def _rollback_target(stores: Stores, environment: str, state: EnvironmentState) -> Manifest:
    """The newest manifest that deployed successfully before the current one and that no later
    rollback reverted (rollbacks are newer than what they revert, so the walk sees them first)."""
    current = state.deployed.version if state.deployed else None
    reverted: set[int] = set()
    read: dict[int, Manifest] = {}
    for entry in stores.deployments.entries(environment):
        if entry.outcome != "succeeded":
            continue
        if entry.version not in read:
            read[entry.version] = manifest_of(stores, environment, entry.version)
        manifest = read[entry.version]
        if manifest.reverts is not None:
            reverted.add(manifest.reverts)
        if entry.version != current and entry.version not in reverted:
            return manifest
    raise BadInput(
        f"{environment} has no successful deployment before the current one that was not "
        "rolled back: name one with --to"
    )
