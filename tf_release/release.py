"""The release flows: publish, prepare, apply and rollback (deploy.py deploys, views.py reads).

Plain functions over a `Stores` bundle, usable without the CLI. Every check of the request runs
before the first write, so bad input never leaves anything behind.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from tf_release import naming
from tf_release.deploy import (
    DeployOptions,
    DeployResult,
    check_images_exist,
    check_unlocked,
    deploy_manifest,
)
from tf_release.errors import BadInput, ImagesMissing
from tf_release.manifest import ImageChanges, Manifest, diff_images
from tf_release.state import EnvironmentState
from tf_release.stores import Stores, manifest_of


@dataclass(frozen=True)
class Prepared:
    environment: str
    manifest: Manifest | None  # None: the environment already runs exactly these images
    changes: ImageChanges
    deployed_version: int | None

    def to_document(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "created": self.manifest is not None,
            "version": self.manifest.name if self.manifest else None,
            "deployed_version": naming.format_optional_version(self.deployed_version),
            "changes": self.changes.to_document(),
            "manifest": self.manifest.to_document() if self.manifest else None,
        }


# Step 1: build → artefact


def publish(
    stores: Stores, image: str, url: str, label: str = naming.LATEST, check_image: bool = True
) -> str:
    """Point `/{project}/image_ids/{label}/{image}` at a freshly pushed image (checked in ECR,
    so that a typo in a tag never becomes a release)."""
    stores.config.check_image(image)
    naming.check_image_url(url)
    stores.config.check_label(label)
    if check_image and stores.registry.missing([url]):
        raise ImagesMissing(
            f"{url} does not exist in ECR: push it first (or pass --skip-image-check)"
        )
    stores.images.put(label, image, url)
    return naming.image_parameter(stores.config.project, label, image)


# Step 2: artefacts → release manifest


def prepare(
    stores: Stores,
    environment: str,
    reason: str,
    images: Iterable[str] = (),
    source: str | None = None,
    force: bool = False,
) -> Prepared:
    """Create the next manifest from the source label; with `images`, take only those."""
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason)
    selected = [stores.config.check_image(name) for name in images]
    label = env.promote_from if source is None else stores.config.check_label(source)
    if label == environment:
        raise BadInput(f"cannot prepare {environment} from its own images")

    with stores.progress.step(f"preparing {environment} from {label}"):
        available = source_images(stores, label, selected)
        current = stores.states.get(environment)
        state = current[0]
        deployed = state.deployed_images
        wanted = (
            {**deployed, **{name: available[name] for name in selected}} if selected else available
        )
        changes = diff_images(deployed, wanted)
        deployed_version = state.deployed.version if state.deployed else None
        if changes.empty and not force:
            return Prepared(environment, None, changes, deployed_version)
        manifest = _create_manifest(stores, environment, wanted, reason, label, current)
    return Prepared(environment, manifest, changes, deployed_version)


def source_images(stores: Stores, label: str, selected: list[str]) -> dict[str, str]:
    """The images a manifest can take from a label: the selected ones, or all (allow-listed)."""
    # Known names are read ten a request; otherwise by path (one more request after a full page)
    if selected or stores.config.images is not None:
        available = stores.images.read_named(label, selected or stores.config.images or ())
    else:
        available = stores.images.read(label)
    path = naming.image_path(stores.config.project, label)
    missing = [name for name in selected if name not in available]
    if missing:
        raise BadInput(f"no image {', '.join(missing)} under {path}: publish it first")
    if not available:
        raise BadInput(f"no images under {path}: publish some first")
    return available


def _create_manifest(
    stores: Stores,
    environment: str,
    images: dict[str, str],
    reason: str,
    source: str,
    current: tuple[EnvironmentState, str | None],
) -> Manifest:
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
        )

    manifest = stores.manifests.create_next(build, after=current[0].latest_version)
    stores.states.update(environment, lambda s: s.with_latest(manifest.version), current=current)
    return manifest


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
    check_unlocked(stores.states.get(environment)[0], environment)
    prepared = prepare(stores, environment, reason, images, force=force)
    if prepared.manifest is None:
        return prepared, None
    current = stores.states.get(environment)
    return prepared, deploy_manifest(stores, env, prepared.manifest, current, options)


def rollback(
    stores: Stores,
    environment: str,
    reason: str,
    to: int | None = None,
    options: DeployOptions = DeployOptions(),
) -> tuple[Manifest, DeployResult]:
    """Write an old manifest again under a new version, and deploy that.

    Its images are checked before the new manifest is written: images that ECR has expired
    stop the rollback before anything changes.
    """
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason)
    current = stores.states.get(environment)
    check_unlocked(current[0], environment)
    target = to if to is not None else _previous_good_version(stores, environment, current[0])
    old = manifest_of(stores, environment, target)
    if options.check_images:
        check_images_exist(stores, current[0], old.images)
    manifest = _create_manifest(stores, environment, old.images, reason, old.name, current)
    result = deploy_manifest(
        stores,
        env,
        manifest,
        stores.states.get(environment),
        replace(options, check_images=False),
    )
    return manifest, result


def _previous_good_version(stores: Stores, environment: str, state: EnvironmentState) -> int:
    current = state.deployed.version if state.deployed else None
    for entry in stores.deployments.entries(environment):
        if entry.outcome == "succeeded" and entry.version != current:
            return entry.version
    raise BadInput(
        f"{environment} has no successful deployment before the current one: name one with --to"
    )
