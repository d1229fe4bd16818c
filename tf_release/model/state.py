"""What tf-release knows about an environment: its newest manifest, what runs there, who deploys.

`EnvironmentState` is one small document per environment, changed only by compare-and-swap, so the
newest version, the deployed images and the deploy lock are read in one request.
`Deployment` is the append-only record of how one deploy ended.
"""

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tf_release.model import naming, schemas
from tf_release.model.errors import BadInput

OUTCOMES = ("succeeded", "failed", "cancelled", "abandoned")


@dataclass(frozen=True)
class Override:
    """A release rule an operator went past (`--override`), why, and who: kept on the record."""

    rule: str  # soak or freeze
    reason: str
    by: str

    def to_document(self) -> dict[str, str]:
        return {"rule": self.rule, "reason": self.reason, "by": self.by}

    @classmethod
    def from_document(cls, document: dict[str, str]) -> "Override":
        return cls(document["rule"], document["reason"], document["by"])

    def describe(self, whole: bool = False) -> str:
        """`freeze overridden by alice: why`, the why cut to its first line unless `whole`."""
        reason = self.reason if whole else naming.first_line(self.reason)
        return f"{self.rule} overridden by {naming.person(self.by)}: {reason}"


def _overrides(documents: list[dict[str, str]] | None) -> tuple[Override, ...]:
    return tuple(Override.from_document(item) for item in documents or ())


@dataclass(frozen=True)
class Deployed:
    version: int
    images: dict[str, str]  # the manifest's, as written
    deployment_id: str
    finished_at: datetime
    by: str
    digests: dict[str, str] = field(default_factory=dict)  # the manifest's
    pinned: bool = False  # SSM holds the images at their digests (`REPO@sha256:…`)
    overrides: tuple[Override, ...] = ()  # release rules its deploy went past
    # when an image that ran unchanged through earlier deploys started running (soak counts
    # from there); absent: since finished_at. A cache: repair does not rebuild it.
    since: dict[str, datetime] = field(default_factory=dict, compare=False)

    def running_since(self, name: str) -> datetime:
        return self.since.get(name, self.finished_at)

    def runs(self, name: str, url: str, digest: str | None) -> bool:
        """Whether this image, at this digest, is what runs under `name`."""
        return self.images.get(name) == url and self.digests.get(name) == digest

    def carried_from(self, before: "Deployed | None") -> "Deployed":
        """This deployment, each image that ran unchanged before keeping when it started."""
        if before is None:
            return self
        since = {
            name: before.running_since(name)
            for name, url in self.images.items()
            if before.runs(name, url, self.digests.get(name))
        }
        return replace(self, since=since)

    @property
    def held(self) -> dict[str, str]:
        """What SSM holds while this runs."""
        if not self.pinned:
            return dict(self.images)
        return {
            name: naming.pin(url, self.digests[name]) if name in self.digests else url
            for name, url in self.images.items()
        }


@dataclass(frozen=True)
class Lock:
    """Who deploys now. `pid` names the holder's process on `host` (absent in locks written
    before it was recorded), so `unlock` can tell a live deploy from a dead one; `phase` says
    how far it got, so a lock that died in apply is known to leave the stack partly applied."""

    deployment_id: str
    version: int
    holder: str
    host: str
    started_at: datetime
    pid: int | None = None
    phase: str | None = None

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "deployment_id": self.deployment_id,
            "version": naming.format_version(self.version),
            "holder": self.holder,
            "host": self.host,
            "started_at": naming.format_time(self.started_at),
        }
        if self.pid is not None:
            document["pid"] = self.pid
        if self.phase is not None:
            document["phase"] = self.phase
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Lock":
        return cls(
            deployment_id=document["deployment_id"],
            version=naming.parse_version(document["version"]),
            holder=document["holder"],
            host=document["host"],
            started_at=naming.parse_time(document["started_at"]),
            pid=document.get("pid"),
            phase=document.get("phase"),
        )

    def describe(self) -> str:
        process = f" (process {self.pid})" if self.pid is not None else ""
        applying = " and reached terraform apply" if self.phase == "apply" else ""
        return (
            f"{self.holder} on {self.host}{process} started deploying "
            f"{naming.format_version(self.version)} at {naming.format_time(self.started_at)}"
            f"{applying}"
        )

    def partly_applied(self, environment: str) -> str | None:
        """What to do once this lock is gone, when its deploy got as far as terraform apply."""
        return partly_applied(environment) if self.phase == "apply" else None


def partly_applied(environment: str) -> str:
    """What to do after a deploy stopped inside terraform apply (failed, interrupted, died)."""
    return (
        "the stack may be partly applied: redeploy with "
        f"`tf-release deploy --env {environment}`; `tf-release verify --env {environment} "
        "--terraform` shows what Terraform would change"
    )


@dataclass(frozen=True)
class Attempt:
    """The newest deploy when it did not succeed (or still runs): kept in the state beside what
    runs, so `status` shows what went wrong without reading the records."""

    version: int
    outcome: str  # failed, cancelled, abandoned, or running
    finished_at: datetime | None
    started_by: str
    message: str  # the first line of its error
    # it stopped inside terraform apply and did not converge back, or converging back failed
    partly_applied: bool = False

    @classmethod
    def running(cls, lock: Lock) -> "Attempt":
        return cls(
            lock.version,
            "running",
            None,
            lock.holder,
            f"in progress since {naming.format_time(lock.started_at)} on {lock.host}",
        )

    @classmethod
    def ended(cls, record: "Deployment") -> "Attempt":
        return cls(
            record.version,
            record.outcome,
            record.finished_at,
            record.started_by,
            record.headline,
            record.convergence == "failed"
            or (record.phase == "apply" and record.convergence != "succeeded"),
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "version": naming.format_version(self.version),
            "outcome": self.outcome,
            "finished_at": naming.format_time(self.finished_at) if self.finished_at else None,
            "started_by": self.started_by,
            "message": self.message,
            **({"partly_applied": True} if self.partly_applied else {}),
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Attempt":
        finished = document["finished_at"]
        return cls(
            naming.parse_version(document["version"]),
            document["outcome"],
            None if finished is None else naming.parse_time(finished),
            document["started_by"],
            document["message"],
            document.get("partly_applied", False),
        )


RECENT = 100  # the newest deployments a state remembers, for the board


@dataclass(frozen=True)
class Recent:
    """One of the environment's newest deployments as the board shows it, kept in the state so
    the board reads neither its record nor its manifest."""

    deployment_id: str
    version: int
    outcome: str
    finished_at: datetime
    by: str
    reason: str | None  # the manifest's; None where the deploy that ended did not know it
    message: str = ""  # the first line of its error
    overrides: tuple[Override, ...] = ()

    @classmethod
    def of(cls, record: "Deployment", reason: str | None) -> "Recent":
        return cls(
            record.deployment_id,
            record.version,
            record.outcome,
            record.finished_at,
            record.started_by,
            reason,
            record.headline,
            record.overrides,
        )

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "deployment_id": self.deployment_id,
            "version": naming.format_version(self.version),
            "outcome": self.outcome,
            "finished_at": naming.format_time(self.finished_at),
            "by": self.by,
        }
        if self.reason is not None:
            document["reason"] = self.reason
        if self.message:
            document["message"] = self.message
        if self.overrides:
            document["overrides"] = [item.to_document() for item in self.overrides]
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Recent":
        return cls(
            document["deployment_id"],
            naming.parse_version(document["version"]),
            document["outcome"],
            naming.parse_time(document["finished_at"]),
            document["by"],
            document.get("reason"),
            document.get("message", ""),
            _overrides(document.get("overrides")),
        )


@dataclass(frozen=True)
class EnvironmentState:
    latest_version: int = 0
    deployed: Deployed | None = None
    lock: Lock | None = None
    latest_images: str | None = None  # images_digest of the newest manifest: spots a retry
    last_attempt: Attempt | None = None  # None when the newest deploy succeeded
    # the newest deployments, newest first, at most RECENT. A cache: repair does not rebuild it
    recent: tuple[Recent, ...] = field(default=(), compare=False)

    @property
    def deployed_images(self) -> dict[str, str]:
        """The images of the manifest that runs, as written (tags)."""
        return dict(self.deployed.images) if self.deployed else {}

    @property
    def held_images(self) -> dict[str, str]:
        """What SSM holds while the deployed manifest runs (pinned to digests, if it was)."""
        return self.deployed.held if self.deployed else {}

    def with_latest(self, version: int, images: str) -> "EnvironmentState":
        """The newest manifest is now `version` (unless a newer one was written meanwhile),
        holding images of digest `images`."""
        if version < self.latest_version:
            return self
        return replace(self, latest_version=version, latest_images=images)

    def remembering(self, record: "Deployment", reason: str | None) -> "EnvironmentState":
        """This state with `record` the newest of its recent deployments."""
        kept = [item for item in self.recent if item.deployment_id != record.deployment_id]
        return replace(self, recent=(Recent.of(record, reason), *kept)[:RECENT])

    def ended(
        self, record: "Deployment", reason: str | None, deployed: Deployed | None = None
    ) -> "EnvironmentState":
        """This state once the deploy of `record` ended and let its lock go: it remembers the
        deploy, a failure as the last attempt until a deploy succeeds, and what it deployed
        (`deployed`, on success), each image that ran on unchanged keeping when it started."""
        return replace(
            self.remembering(record, reason),
            lock=None,
            deployed=self.deployed if deployed is None else deployed.carried_from(self.deployed),
            last_attempt=None if record.outcome == "succeeded" else Attempt.ended(record),
        )

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "latest_version": self.latest_version,
            "deployed": None
            if self.deployed is None
            else {
                "version": naming.format_version(self.deployed.version),
                "images": dict(sorted(self.deployed.images.items())),
                "deployment_id": self.deployed.deployment_id,
                "finished_at": naming.format_time(self.deployed.finished_at),
                "by": self.deployed.by,
                **(
                    {"digests": dict(sorted(self.deployed.digests.items()))}
                    if self.deployed.digests
                    else {}
                ),
                **({"pinned": True} if self.deployed.pinned else {}),
                **(
                    {"overrides": [item.to_document() for item in self.deployed.overrides]}
                    if self.deployed.overrides
                    else {}
                ),
                **(
                    {
                        "since": {
                            name: naming.format_time(moment)
                            for name, moment in sorted(self.deployed.since.items())
                        }
                    }
                    if self.deployed.since
                    else {}
                ),
            },
            "lock": None if self.lock is None else self.lock.to_document(),
        }
        if self.latest_images is not None:
            document["latest_images"] = self.latest_images
        if self.last_attempt is not None:
            document["last_attempt"] = self.last_attempt.to_document()
        if self.recent:
            document["recent"] = [item.to_document() for item in self.recent]
        schemas.validate("state", document, "environment state")
        return json.dumps(document, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "EnvironmentState":
        document = schemas.load("state", data, where)
        deployed, lock = document["deployed"], document["lock"]
        return cls(
            latest_version=document["latest_version"],
            latest_images=document.get("latest_images"),
            last_attempt=Attempt.from_document(document["last_attempt"])
            if document.get("last_attempt")
            else None,
            recent=tuple(Recent.from_document(item) for item in document.get("recent", ())),
            deployed=None
            if deployed is None
            else Deployed(
                version=naming.parse_version(deployed["version"]),
                images=dict(deployed["images"]),
                deployment_id=deployed["deployment_id"],
                finished_at=naming.parse_time(deployed["finished_at"]),
                by=deployed["by"],
                digests=dict(deployed.get("digests", {})),
                pinned=deployed.get("pinned", False),
                overrides=_overrides(deployed.get("overrides")),
                since={
                    name: naming.parse_time(moment)
                    for name, moment in deployed.get("since", {}).items()
                },
            ),
            lock=None if lock is None else Lock.from_document(lock),
        )


@dataclass(frozen=True)
class Deployment:
    """How one deploy ended. `previous_version` is what ran before it started."""

    project: str
    environment: str
    deployment_id: str
    version: int
    outcome: str
    started_at: datetime
    finished_at: datetime
    started_by: str
    host: str
    previous_version: int | None
    message: str = ""
    cleared_by: str | None = None
    phase: str | None = None  # where a failed deploy stopped: ssm, plan, apply, verify, ecs
    checks: tuple[dict[str, Any], ...] = ()  # the gates' verdicts (gates.Check documents)
    skipped_verify: bool = False  # --skip-verify: an emergency, on the record
    rolled_back_to: int | None = None  # --atomic: the version it converged back to
    convergence: str | None = None  # how that went: succeeded or failed
    overrides: tuple[Override, ...] = ()  # release rules this deploy went past
    approvals: tuple[dict[str, str], ...] = ()  # who approved the manifest (approval.py)

    @property
    def headline(self) -> str:
        """The first line of its error; empty when it succeeded."""
        return self.message.splitlines()[0] if self.message else ""

    @property
    def key(self) -> str:
        return naming.deployment_key(
            self.project,
            self.environment,
            self.finished_at,
            self.version,
            self.outcome,
            self.deployment_id,
        )

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "project": self.project,
            "environment": self.environment,
            "deployment_id": self.deployment_id,
            "version": naming.format_version(self.version),
            "outcome": self.outcome,
            "started_at": naming.format_time(self.started_at),
            "finished_at": naming.format_time(self.finished_at),
            "started_by": self.started_by,
            "host": self.host,
            "previous_version": None
            if self.previous_version is None
            else naming.format_version(self.previous_version),
            "message": self.message,
        }
        optional = {
            "cleared_by": self.cleared_by,
            "phase": self.phase,
            "checks": list(self.checks) or None,
            "skipped_verify": self.skipped_verify or None,
            "rolled_back_to": naming.format_optional_version(self.rolled_back_to),
            "convergence": self.convergence,
            "overrides": [item.to_document() for item in self.overrides] or None,
            "approvals": list(self.approvals) or None,
        }
        document.update({key: value for key, value in optional.items() if value is not None})
        return document

    def to_json(self) -> bytes:
        document = self.to_document()
        schemas.validate("deployment", document, f"deployment {self.deployment_id}")
        return json.dumps(document, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Deployment":
        document = schemas.load("deployment", data, where)
        previous = document["previous_version"]
        return cls(
            project=document["project"],
            environment=document["environment"],
            deployment_id=document["deployment_id"],
            version=naming.parse_version(document["version"]),
            outcome=document["outcome"],
            started_at=naming.parse_time(document["started_at"]),
            finished_at=naming.parse_time(document["finished_at"]),
            started_by=document["started_by"],
            host=document["host"],
            previous_version=None if previous is None else naming.parse_version(previous),
            message=document["message"],
            cleared_by=document.get("cleared_by"),
            phase=document.get("phase"),
            checks=tuple(document.get("checks", ())),
            skipped_verify=document.get("skipped_verify", False),
            rolled_back_to=naming.parse_version(document["rolled_back_to"])
            if "rolled_back_to" in document
            else None,
            convergence=document.get("convergence"),
            overrides=_overrides(document.get("overrides")),
            approvals=tuple(document.get("approvals", ())),
        )


@dataclass(frozen=True)
class DeploymentEntry:
    """A deployment as its key names it: enough to answer 'what ran when' without reading it."""

    key: str
    finished_at: datetime
    version: int
    outcome: str
    deployment_id: str = field(compare=False)

    @classmethod
    def from_key(cls, key: str) -> "DeploymentEntry | None":
        """None for a key that is not a deployment record (ignored, not trusted)."""
        name = key.rsplit("/", 1)[-1]
        parts = name.removesuffix(".json").split("_", 3)
        if len(parts) != 4 or not name.endswith(".json") or parts[2] not in OUTCOMES:
            return None
        try:
            return cls(
                key=key,
                finished_at=naming.from_newest_first(parts[0]),
                version=naming.parse_version(parts[1]),
                outcome=parts[2],
                deployment_id=parts[3],
            )
        except (BadInput, ValueError):
            return None
