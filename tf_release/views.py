"""The read-only views: history, show, status and diff. They read, never write, and take the
same `Stores` as the flows in release.py."""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tf_release import naming
from tf_release.errors import BadInput
from tf_release.manifest import ImageChanges, Manifest, diff_images
from tf_release.release import source_images
from tf_release.state import Deployed, DeploymentEntry, Lock
from tf_release.stores import Stores, manifest_of, probe_newest


def diff_environment(stores: Stores, environment: str, against: str | None = None) -> ImageChanges:
    """What a full promotion from `against` (default: the environment's promote_from label)
    would change in what the environment runs now."""
    env = stores.config.environment(environment)
    label = env.promote_from if against is None else stores.config.check_label(against)
    if label == environment:
        raise BadInput(f"cannot compare {environment} with itself")
    available = source_images(stores, label, [])
    return diff_images(stores.states.get(environment)[0].deployed_images, available)


def diff_versions(stores: Stores, environment: str, old: int, new: int) -> ImageChanges:
    """What deploying manifest `new` after manifest `old` changes."""
    stores.config.environment(environment)
    return diff_images(
        manifest_of(stores, environment, old).images, manifest_of(stores, environment, new).images
    )


@dataclass(frozen=True)
class HistoryEntry:
    manifest: Manifest
    deployments: tuple[DeploymentEntry, ...]

    def to_document(self) -> dict[str, Any]:
        return {
            **self.manifest.to_document(),
            "deployments": [_entry_document(entry) for entry in self.deployments],
        }


def _entry_document(entry: DeploymentEntry) -> dict[str, Any]:
    return {
        "deployment_id": entry.deployment_id,
        "outcome": entry.outcome,
        "finished_at": naming.format_time(entry.finished_at),
    }


def history(stores: Stores, environment: str, limit: int = 20) -> list[HistoryEntry]:
    """The newest manifests, newest first, each with the deployments that used it."""
    stores.config.environment(environment)
    if limit < 1:
        raise BadInput(f"--limit must be at least 1, not {limit}")
    newest = probe_newest(stores, environment, stores.states.get(environment)[0])
    versions = range(newest, max(0, newest - limit), -1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda v: stores.manifests.get(environment, v), versions))
    manifests = [manifest for manifest in found if manifest is not None]
    used = _deployments_since(stores, environment, manifests)
    return [HistoryEntry(m, tuple(used.get(m.version, ()))) for m in manifests]


def show(stores: Stores, environment: str, version: int) -> HistoryEntry:
    stores.config.environment(environment)
    manifest = manifest_of(stores, environment, version)
    return HistoryEntry(
        manifest, tuple(_deployments_since(stores, environment, [manifest]).get(version, ()))
    )


def _deployments_since(
    stores: Stores, environment: str, manifests: list[Manifest]
) -> dict[int, list[DeploymentEntry]]:
    """Deployments of these manifests; none can predate the oldest, so the listing stops there."""
    if not manifests:
        return {}
    oldest = min(manifest.created_at for manifest in manifests)
    wanted = {manifest.version for manifest in manifests}
    used: dict[int, list[DeploymentEntry]] = {}
    for entry in stores.deployments.entries(environment):
        if entry.finished_at < oldest:
            break
        if entry.version in wanted:
            used.setdefault(entry.version, []).append(entry)
    return used


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    deployed: Deployed | None
    latest_version: int
    lock: Lock | None = None
    at: datetime | None = None

    def describe_lock(self) -> str | None:
        if self.lock is None:
            return None
        note = self.lock.partly_applied(self.environment)
        return (
            f"a deploy is in progress or was abandoned: {self.lock.describe()}; if it is not "
            f"running, clear it with `tf-release unlock --env {self.environment}`"
        ) + (f"; {note}" if note else "")

    def to_document(self) -> dict[str, Any]:
        deployed = self.deployed
        return {
            "environment": self.environment,
            "at": naming.format_time(self.at) if self.at else None,
            "version": naming.format_version(deployed.version) if deployed else None,
            "deployed_at": naming.format_time(deployed.finished_at) if deployed else None,
            "deployed_by": deployed.by if deployed else None,
            "deployment_id": deployed.deployment_id if deployed else None,
            "images": dict(deployed.images) if deployed else {},
            "latest_version": naming.format_optional_version(self.latest_version or None),
            "lock": None
            if self.lock is None
            else {**self.lock.to_document(), "explanation": self.describe_lock()},
        }


def status(
    stores: Stores, environments: Iterable[str] | None = None, at: datetime | None = None
) -> list[EnvironmentStatus]:
    """Which version each environment runs now, or ran at `at`."""
    names = list(environments) if environments else list(stores.config.environments)
    for name in names:
        stores.config.environment(name)
    if at is not None:
        return [_status_at(stores, name, at) for name in names]
    result = []
    for name in names:
        state, _ = stores.states.get(name)
        result.append(EnvironmentStatus(name, state.deployed, state.latest_version, state.lock))
    return result


def _status_at(stores: Stores, environment: str, at: datetime) -> EnvironmentStatus:
    for entry in stores.deployments.entries(environment, at=at):
        if entry.outcome == "succeeded":
            record = stores.deployments.get(entry)
            manifest = manifest_of(stores, environment, record.version)
            deployed = Deployed(
                record.version,
                manifest.images,
                record.deployment_id,
                record.finished_at,
                record.started_by,
            )
            return EnvironmentStatus(environment, deployed, 0, at=at)
    return EnvironmentStatus(environment, None, 0, at=at)
