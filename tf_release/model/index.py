"""Indexes beside the record, so `show` and the board cost the same at any length of history.

The deployment records and the manifests stay the truth; an index is a summary of them, kept
up to date by every deploy as it ends, and rebuilt by `repair`. A view that finds no index, or
one that does not cover what it asks, reads the record instead: slower, never wrong.

- `VersionUse`: one manifest's deployments and the successful rollbacks that reverted it.
  Created empty just before its manifest, so it has missed nothing the manifest saw.
- `DeploymentPeriod`: the deployments that finished in one 32-day period (a 30-day board reads
  at most two), as the board shows them, complete from `covers_from` on.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tf_release.model import naming, schemas
from tf_release.model.state import DeploymentEntry, Recent

PERIOD = timedelta(days=32)  # longer than the board's default window: it spans two at most
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # periods are counted from here; nothing ran before
ONE_MS = timedelta(milliseconds=1)  # times are kept to the millisecond


def period_start(moment: datetime) -> datetime:
    """The start of the period `moment` falls in (periods are counted from 1970-01-01 UTC)."""
    return EPOCH + PERIOD * ((moment - EPOCH) // PERIOD)


def periods_between(since: datetime, until: datetime) -> list[datetime]:
    """The starts of the periods that overlap [since, until], newest first."""
    starts, start = [], period_start(until)
    while start + PERIOD > since:
        starts.append(start)
        start -= PERIOD
    return starts


def reverted_by(
    succeeded: Iterable[datetime], rollbacks: Iterable[tuple[int, datetime]]
) -> int | None:
    """The rollback that took a version out of service: one that deployed, unless the version
    itself deployed again after it (then it is back). Of several, the first (lowest) counts."""
    done = list(succeeded)
    latest: dict[int, datetime] = {}
    for version, at in rollbacks:
        latest[version] = max(at, latest.get(version, at))
    for version in sorted(latest):
        if not any(again > latest[version] for again in done):
            return version
    return None


@dataclass(frozen=True)
class VersionUse:
    project: str
    environment: str
    version: int
    manifest_created_at: datetime  # of the manifest it indexes
    deployments: tuple[DeploymentEntry, ...] = ()  # newest first
    rollbacks: tuple[tuple[int, datetime], ...] = ()  # (rollback version, when it succeeded)

    def with_deployment(self, entry: DeploymentEntry) -> "VersionUse":
        kept = [item for item in self.deployments if item.deployment_id != entry.deployment_id]
        ordered = sorted([entry, *kept], key=lambda item: item.finished_at, reverse=True)
        return replace(self, deployments=tuple(ordered))

    def with_rollback(self, version: int, succeeded_at: datetime) -> "VersionUse":
        if (version, succeeded_at) in self.rollbacks:
            return self
        return replace(self, rollbacks=(*self.rollbacks, (version, succeeded_at)))

    @property
    def reverted_by(self) -> int | None:
        succeeded = (e.finished_at for e in self.deployments if e.outcome == "succeeded")
        return reverted_by(succeeded, self.rollbacks)

    def to_json(self) -> bytes:
        document = {
            "project": self.project,
            "environment": self.environment,
            "version": naming.format_version(self.version),
            "manifest_created_at": naming.format_time(self.manifest_created_at),
            "deployments": [
                {
                    "deployment_id": entry.deployment_id,
                    "outcome": entry.outcome,
                    "finished_at": naming.format_time(entry.finished_at),
                }
                for entry in self.deployments
            ],
            "rollbacks": [
                {"version": naming.format_version(version), "succeeded_at": naming.format_time(at)}
                for version, at in self.rollbacks
            ],
        }
        schemas.validate("version-use", document, f"index of {naming.format_version(self.version)}")
        return json.dumps(document, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "VersionUse":
        document = schemas.load("version-use", data, where)
        project, environment = document["project"], document["environment"]
        version = naming.parse_version(document["version"])

        def entry(item: dict[str, Any]) -> DeploymentEntry:
            finished_at = naming.parse_time(item["finished_at"])
            outcome, deployment_id = item["outcome"], item["deployment_id"]
            key = naming.deployment_key(
                project, environment, finished_at, version, outcome, deployment_id
            )
            return DeploymentEntry(key, finished_at, version, outcome, deployment_id)

        return cls(
            project,
            environment,
            version,
            naming.parse_time(document["manifest_created_at"]),
            tuple(entry(item) for item in document["deployments"]),
            tuple(
                (naming.parse_version(item["version"]), naming.parse_time(item["succeeded_at"]))
                for item in document["rollbacks"]
            ),
        )


@dataclass(frozen=True)
class DeploymentPeriod:
    project: str
    environment: str
    starts: datetime
    # every deployment from here to the period's end is listed; before `starts`, none ran
    covers_from: datetime
    deployments: tuple[Recent, ...] = ()  # newest first

    @property
    def ends(self) -> datetime:
        return self.starts + PERIOD

    @classmethod
    def begin(
        cls,
        project: str,
        environment: str,
        starts: datetime,
        known: tuple[Recent, ...],
        first: bool = False,
    ) -> "DeploymentPeriod":
        """A new period's index, seeded from the state's newest deployments (`known`, newest
        first; `first`: nothing ran before them). Complete from just after the newest deployment
        before the period when they reach back to one (nothing ran in between), from the start
        of time when nothing ran before, else from the oldest of them."""
        before = [item.finished_at for item in known if item.finished_at < starts]
        if before:
            covers_from = before[0] + ONE_MS
        elif first:
            covers_from = EPOCH
        else:
            covers_from = known[-1].finished_at if known else starts
        return cls(project, environment, starts, covers_from).merged(known)

    def merged(self, known: tuple[Recent, ...]) -> "DeploymentPeriod":
        """With the deployments of `known` (the state's newest, newest first) that fall in the
        period. A deploy by a tf-release that keeps no index leaves a gap: when `known` does
        not reach back to this index's newest entry, only what `known` covers is claimed."""
        mine = [item for item in known if self.starts <= item.finished_at < self.ends]
        if not mine and not self.deployments:
            return self
        covers_from = self.covers_from
        newest = self.deployments[0].finished_at if self.deployments else None
        reaches = bool(known) and (newest is None or known[-1].finished_at <= newest)
        if known and not reaches:
            covers_from = max(covers_from, known[-1].finished_at)
        ids = {item.deployment_id for item in mine}
        everything = [*mine, *(item for item in self.deployments if item.deployment_id not in ids)]
        everything.sort(key=lambda item: item.finished_at, reverse=True)
        return replace(self, covers_from=covers_from, deployments=tuple(everything))

    def to_json(self) -> bytes:
        document = {
            "project": self.project,
            "environment": self.environment,
            "starts": naming.format_time(self.starts),
            "covers_from": naming.format_time(self.covers_from),
            "deployments": [item.to_document() for item in self.deployments],
        }
        schemas.validate("deployment-period", document, f"index of {self.starts:%Y-%m-%d}")
        return json.dumps(document, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "DeploymentPeriod":
        document = schemas.load("deployment-period", data, where)
        return cls(
            document["project"],
            document["environment"],
            naming.parse_time(document["starts"]),
            naming.parse_time(document["covers_from"]),
            tuple(Recent.from_document(item) for item in document["deployments"]),
        )
