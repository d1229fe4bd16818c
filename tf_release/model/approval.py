"""Approvals: a second person's yes to one exact manifest, kept beside it in the bucket.

An approval names the manifest by its version and its sha256, so it counts for that manifest
only: not for the next version, nor for a manifest written again under the same number. It is
written once and never changed; taking it back writes a revocation beside it.
"""

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tf_release.model import naming, schemas
from tf_release.model.manifest import Manifest


@dataclass(frozen=True)
class Approval:
    environment: str
    version: int
    manifest_sha256: str
    approver: str  # the caller's ARN, from STS
    approver_id: str  # the caller's STS UserId: the object's name, which IAM can pin
    approved_at: datetime
    reason: str = ""

    def to_document(self, project: str) -> dict[str, Any]:
        document = {
            "schema": "approval",
            "project": project,
            "environment": self.environment,
            "version": naming.format_version(self.version),
            "manifest_sha256": self.manifest_sha256,
            "approver": self.approver,
            "approver_id": self.approver_id,
            "approved_at": naming.format_time(self.approved_at),
            "reason": self.reason,
        }
        schemas.validate("approval", document, f"approval of {document['version']}")
        return document

    def to_json(self, project: str, revoked: tuple[datetime, str] | None = None) -> bytes:
        """The approval, or with `revoked` (when, why) its revocation: the approval as it was,
        with when it was taken back and why in place of its reason."""
        document = self.to_document(project)
        if revoked is not None:
            document |= {"revoked_at": naming.format_time(revoked[0]), "reason": revoked[1]}
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes, where: str) -> "Approval":
        document = schemas.load("approval", data, where)
        return cls(
            environment=document["environment"],
            version=naming.parse_version(document["version"]),
            manifest_sha256=document["manifest_sha256"],
            approver=document["approver"],
            approver_id=document["approver_id"],
            approved_at=naming.parse_time(document["approved_at"]),
            reason=document["reason"],
        )

    def shown(self) -> dict[str, Any]:
        """As records and --json show it."""
        return {
            "approver": self.approver,
            "approved_at": naming.format_time(self.approved_at),
            "reason": self.reason,
        }


def may_approve(approver: str, patterns: tuple[str, ...]) -> bool:
    """Whether an identity is among the `approvers` (any, when none are named): an ARN, or a
    pattern with `*` and `?` (`arn:aws:sts::*:assumed-role/Leads/*`)."""
    return not patterns or any(fnmatch.fnmatchcase(approver, pattern) for pattern in patterns)


@dataclass(frozen=True)
class Tally:
    """How a manifest stands against an environment's `approvals` rule."""

    version: int
    needed: int
    author: str
    counted: tuple[Approval, ...]  # distinct approvers other than the author, of this manifest
    approvers: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        return len(self.counted) < self.needed

    def describe(self) -> str:
        """`2 approvals of v5 by someone other than its author (arn…); it has 1 (arn…)`."""
        have = ", ".join(approval.approver for approval in self.counted)
        who = f"; may approve: {', '.join(self.approvers)}" if self.approvers else ""
        return (
            f"{self.needed} approval(s) of {naming.format_version(self.version)} by someone "
            f"other than its author ({self.author}); it has {len(self.counted)}"
            + (f" ({have})" if have else "")
            + who
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "needed": self.needed,
            "approved": [approval.shown() for approval in self.counted],
            "pending": max(self.needed - len(self.counted), 0),
            "approvers": list(self.approvers),
        }


def tally(
    manifest: Manifest,
    approvals: list[Approval],
    revoked: set[str],
    needed: int,
    approvers: tuple[str, ...] = (),
) -> Tally:
    """The approvals that count for `manifest`: of its exact bytes, not taken back, by an
    approver the rule allows, other than its author, one each."""
    counted: dict[str, Approval] = {}
    for approval in sorted(approvals, key=lambda item: item.approved_at):
        if (
            approval.version == manifest.version
            and approval.manifest_sha256 == manifest.sha256
            and approval.approver_id not in revoked
            and approval.approver != manifest.created_by
            and may_approve(approval.approver, approvers)
        ):
            counted.setdefault(approval.approver, approval)
    return Tally(manifest.version, needed, manifest.created_by, tuple(counted.values()), approvers)
