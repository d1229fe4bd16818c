"""Manifests, environment state and deployment records in the release bucket.

Manifests and deployment records are written once and never changed (`If-None-Match: *`); the
environment state is changed only by compare-and-swap on its ETag, so concurrent runs never lose
each other's updates.
"""

import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from tf_release.model import naming
from tf_release.model.approval import Approval
from tf_release.model.errors import AwsFailure, BadInput, BrokenState, ReleaseError
from tf_release.model.index import DeploymentPeriod, VersionUse
from tf_release.model.manifest import Manifest
from tf_release.model.state import Deployment, DeploymentEntry, EnvironmentState
from tf_release.stores.aws import AwsSession, aws_errors, error_code
from tf_release.stores.parallel import in_parallel

ENCRYPTION = {"ServerSideEncryption": "AES256"}
MISSING = {"NoSuchKey", "404", "NotFound"}
LOST = {"PreconditionFailed", "412"}  # the condition failed: another writer got there first
# Another conditional write of the key is in flight: nobody has won yet, so ask again (a create
# that took this for a loss would skip a version number or drop a record).
IN_FLIGHT = {"ConditionalRequestConflict", "409"}
IN_FLIGHT_ATTEMPTS = 5
# A write refused this many times while the state did not change is not settling: give up.
# Refusals because another run wrote first are progress; they are bounded by time instead.
STATE_ATTEMPTS = 10
STATE_PATIENCE = 120.0  # seconds of losing to other writers before giving up
T = TypeVar("T")
Index = TypeVar("Index", VersionUse, DeploymentPeriod)
NEWEST_PAGE = 10  # a few keys, in case a stray object sorts first


class _Bucket:
    """Reads and conditional writes of small JSON objects in one bucket."""

    def __init__(self, session: AwsSession, bucket: str) -> None:
        self.session = session
        self.bucket = bucket

    @property
    def _s3(self) -> Any:
        return self.session.client("s3")

    def read(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when there is no such object."""
        with aws_errors(f"reading s3://{self.bucket}/{key}", self.bucket):
            try:
                response = self._s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if error_code(error) in MISSING:
                    return None
                raise
            return response["Body"].read(), response["ETag"]

    def exists(self, key: str) -> bool:
        with aws_errors(f"looking for s3://{self.bucket}/{key}", self.bucket):
            try:
                self._s3.head_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if error_code(error) in MISSING:
                    return False
                raise
            return True

    def write(
        self, key: str, body: bytes, *, etag: str | None = None, create: bool = False
    ) -> str | None:
        """Write only if the object is new (`create`) or unchanged since read (`etag`).

        Returns the new ETag, or None when another writer got there first: 412, or for `etag`
        404 (AWS's answer when the object was deleted since) and 409 (re-read, then try again).
        A create that meets 409 tries again itself, the outcome of the other write unknown.
        """
        condition = {"IfNoneMatch": "*"} if create else {"IfMatch": etag} if etag else {}
        lost = LOST | IN_FLIGHT | MISSING if etag and not create else LOST
        with aws_errors(f"writing s3://{self.bucket}/{key}", self.bucket):
            attempt = 0
            while True:
                attempt += 1
                try:
                    response = self._s3.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ContentType="application/json",
                        **ENCRYPTION,
                        **condition,
                    )
                    return str(response["ETag"])
                except ClientError as error:
                    code = error_code(error)
                    if code in lost:
                        return None
                    if code not in IN_FLIGHT or attempt == IN_FLIGHT_ATTEMPTS:
                        raise
                time.sleep(random.uniform(0.05, 0.1) * 2**attempt)

    def swap(
        self,
        read: Callable[[], tuple[T, str | None]],
        write: Callable[[T, str | None], str | None],
        change: Callable[[T], T],
        where: str,
        current: tuple[T, str | None] | None = None,
    ) -> tuple[T, str]:
        """Compare-and-swap: `write` the `change` of what `read` gives over the ETag read, again
        from a new read when another writer got there first. Returns what was written, and its
        ETag."""
        attempt, stalled, started, seen = 0, 0, time.monotonic(), None
        while True:
            attempt += 1
            value, etag = current or read()
            current = None
            new = change(value)
            written = write(new, etag)
            if written:
                return new, written
            stalled += etag == seen or seen is None
            seen = etag
            if stalled >= STATE_ATTEMPTS or time.monotonic() - started > STATE_PATIENCE:
                raise AwsFailure(
                    f"{where} refused each of {attempt} attempts to update it: another run "
                    "keeps writing it; try again in a moment"
                )
            # full jitter: runs that lost together do not all try again together
            time.sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))

    def delete(self, key: str) -> None:
        """Remove an object; S3 answers alike whether or not it was there."""
        with aws_errors(f"deleting s3://{self.bucket}/{key}", self.bucket):
            self._s3.delete_object(Bucket=self.bucket, Key=key)

    def keys(
        self, prefix: str, start_after: str | None = None, page_size: int | None = None
    ) -> Iterator[str]:
        """Keys under a prefix in S3's order, a page (up to 1,000) a request, as needed."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        if page_size:
            kwargs["PaginationConfig"] = {"PageSize": page_size}
        with aws_errors(f"listing s3://{self.bucket}/{prefix}", self.bucket):
            for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
                for item in page.get("Contents", []):
                    yield item["Key"]


class ManifestStore(_Bucket):
    def __init__(self, session: AwsSession, bucket: str, project: str) -> None:
        super().__init__(session, bucket)
        self.project = project

    def get(self, environment: str, version: int) -> Manifest | None:
        """The manifest at its key, refused unless it names that same project, environment and
        version (a copied object must not pass for another release)."""
        key = naming.manifest_key(self.project, environment, version)
        found = self.read(key)
        if found is None:
            return None
        where = f"s3://{self.bucket}/{key}"
        manifest = Manifest.from_json(found[0], where)
        named = (manifest.project, manifest.environment, manifest.version)
        if named != (self.project, environment, version):
            raise BadInput(
                f"{where} holds {manifest.project}/{manifest.environment} {manifest.name}, not "
                "what its key names: it was copied or moved by hand"
            )
        return manifest

    def exists_version(self, environment: str, version: int) -> bool:
        return self.exists(naming.manifest_key(self.project, environment, version))

    def create_next(
        self,
        build: Callable[[int], Manifest],
        after: int,
        same: Callable[[Manifest], bool] | None = None,
        first: Callable[[Manifest], None] | None = None,
    ) -> tuple[Manifest, bool]:
        """Create the manifest numbered after `after`, or the first free number after that;
        True with it when, instead, a number another writer took holds what `same` accepts
        (looked at before the next number is tried: concurrent identical prepares make one).

        `after` comes from the environment state and may lag behind; the conditional create makes
        sure no two writers ever get the same number, with no listing of earlier manifests.
        `first` runs before each number is tried (it writes the version's index).
        """
        version = after + 1
        while True:
            manifest = build(version)
            if first is not None:
                first(manifest)
            key = naming.manifest_key(self.project, manifest.environment, version)
            if self.write(key, manifest.to_json(), create=True):
                return manifest, False
            if same is not None:
                taken = self.get(manifest.environment, version)
                if taken is not None and same(taken):
                    return taken, True
            version += 1


class ApprovalStore(_Bucket):
    """Approvals beside the manifests: an object per approver, written once (approval.py)."""

    def __init__(self, session: AwsSession, bucket: str, project: str) -> None:
        super().__init__(session, bucket)
        self.project = project

    def add(self, approval: Approval) -> bool:
        """Write it, unless this approver has approved this version before: then False."""
        key = naming.approval_key(
            self.project, approval.environment, approval.version, approval.approver_id
        )
        return self.write(key, approval.to_json(self.project), create=True) is not None

    def revoke(self, approval: Approval, revoked_at: datetime, reason: str) -> bool:
        """Take an approval back by writing beside it, never over it; False if done before."""
        key = naming.revocation_key(
            self.project, approval.environment, approval.version, approval.approver_id
        )
        body = approval.to_json(self.project, (revoked_at, reason))
        return self.write(key, body, create=True) is not None

    def of(self, environment: str, version: int) -> tuple[list[Approval], set[str]]:
        """A version's approvals, and the ids of the approvers who took theirs back: one
        listing, then a read per approval."""
        prefix = naming.approvals_prefix(self.project, environment, version)
        keys = list(self.keys(prefix))
        revoked = {key[len(prefix) :].removesuffix(naming.REVOKED) for key in keys
                   if key.endswith(naming.REVOKED)}  # fmt: skip
        wanted = [key for key in keys if not key.endswith(naming.REVOKED)]
        return [approval for approval in in_parallel(self._approval, wanted) if approval], revoked

    def get(self, environment: str, version: int, approver_id: str) -> Approval | None:
        return self._approval(naming.approval_key(self.project, environment, version, approver_id))

    def _approval(self, key: str) -> Approval | None:
        found = self.read(key)
        return None if found is None else Approval.parse(found[0], f"s3://{self.bucket}/{key}")


class ProbeObjects(_Bucket):
    """`tf-release doctor`'s throwaway objects, under `{project}/doctor/`: written to see whether
    the bucket refuses the conditional writes that tf-release's record counts on it to refuse."""

    def __init__(self, session: AwsSession, bucket: str, project: str) -> None:
        super().__init__(session, bucket)
        self.prefix = naming.doctor_prefix(project)

    def new_key(self) -> str:
        """A key no run has used: its first create-once write must go in."""
        return f"{self.prefix}conditional-write-probe-{uuid.uuid4()}.json"


def repair_hint(environment: str) -> str:
    return f"rebuild it from the deployment records with `tf-release repair --env {environment}`"


@dataclass(frozen=True)
class StoredState:
    """The state object as stored: `etag` None when there is none; `problem` when it does not
    parse (then `state` is None). What repair and doctor need, and `get` hides."""

    state: EnvironmentState | None
    etag: str | None
    problem: str | None = None


class StateStore(_Bucket):
    def __init__(self, session: AwsSession, bucket: str, project: str) -> None:
        super().__init__(session, bucket)
        self.project = project

    def get(self, environment: str) -> tuple[EnvironmentState, str | None]:
        """The state and its ETag (a fresh state and None when there is none yet).

        A state that does not parse stops every command, with the way to rebuild it.
        """
        stored = self.inspect(environment)
        if stored.state is None:
            raise BrokenState(
                f"the state of {environment} is broken ({stored.problem}): "
                f"{repair_hint(environment)}"
            )
        return stored.state, stored.etag

    def inspect(self, environment: str) -> StoredState:
        key = naming.state_key(self.project, environment)
        found = self.read(key)
        if found is None:
            return StoredState(EnvironmentState(), None)
        try:
            return StoredState(
                EnvironmentState.from_json(found[0], f"s3://{self.bucket}/{key}"), found[1]
            )
        except BadInput as error:
            return StoredState(None, found[1], str(error))

    def where(self, environment: str) -> str:
        return f"s3://{self.bucket}/{naming.state_key(self.project, environment)}"

    def replace(self, environment: str, state: EnvironmentState, etag: str | None) -> str | None:
        """Write a whole state over the object with this ETag (None: only if there is none).

        Returns the new ETag, or None when the object changed since it was read.
        """
        key = naming.state_key(self.project, environment)
        return self.write(key, state.to_json(), etag=etag, create=etag is None)

    def update(
        self,
        environment: str,
        change: Callable[[EnvironmentState], EnvironmentState],
        current: tuple[EnvironmentState, str | None] | None = None,
    ) -> tuple[EnvironmentState, str]:
        """Apply `change` to the newest state, retrying when another run changed it meanwhile.

        `change` may raise to give up (a held lock, say); `current` (the state and its ETag)
        saves a read when the caller has it. Returns the new state and ETag, for the next change.
        """
        return self.swap(
            lambda: self.get(environment),
            lambda state, etag: self.replace(environment, state, etag),
            change,
            self.where(environment),
            current,
        )


class DeploymentLog(_Bucket):
    """Append-only deployment records, keyed so that a listing starts with the newest."""

    def __init__(self, session: AwsSession, bucket: str, project: str) -> None:
        super().__init__(session, bucket)
        self.project = project

    def record(self, deployment: Deployment) -> None:
        self.write(deployment.key, deployment.to_json(), create=True)

    def entries(
        self, environment: str, at: datetime | None = None, page_size: int | None = None
    ) -> Iterator[DeploymentEntry]:
        """Deployments newest first; with `at`, only those that had finished by then.
        `page_size` keeps a listing small when only the newest few are wanted."""
        prefix = naming.deployment_prefix(self.project, environment)
        start = prefix + naming.newest_first(at) if at else None
        keys = self.keys(prefix, start_after=start, page_size=page_size)
        entries = (entry for key in keys if (entry := DeploymentEntry.from_key(key)) is not None)
        # deploys that finished in the same millisecond (a clock held still, as in a rehearsal)
        # sort by version in their keys, oldest first: the newer version goes first
        for _, tied in itertools.groupby(entries, key=lambda entry: entry.finished_at):
            yield from sorted(tied, key=lambda entry: entry.version, reverse=True)

    def newest(self, environment: str, at: datetime | None = None) -> DeploymentEntry | None:
        """The newest deployment (by `at`), from the first page of a small listing."""
        return next(self.entries(environment, at, page_size=NEWEST_PAGE), None)

    def get(self, entry: DeploymentEntry) -> Deployment:
        found = self.read(entry.key)
        where = f"s3://{self.bucket}/{entry.key}"
        if found is None:
            raise AwsFailure(f"{where} was listed but cannot be read")
        return Deployment.from_json(found[0], where)


class IndexStore(_Bucket):
    """The indexes of index.py. One that cannot be read as an index is taken for none: the
    view that wanted it reads the record instead, and the next `repair` rewrites it."""

    def __init__(self, session: AwsSession, bucket: str, project: str) -> None:
        super().__init__(session, bucket)
        self.project = project

    def version_use(self, environment: str, version: int) -> VersionUse | None:
        key = naming.version_use_key(self.project, environment, version)
        return self._parsed(key, VersionUse.from_json)[0]

    def begin_version(self, use: VersionUse) -> None:
        """Create a version's empty index before its manifest; one already there is kept."""
        key = naming.version_use_key(self.project, use.environment, use.version)
        self.write(key, use.to_json(), create=True)

    def update_version_use(
        self, environment: str, version: int, change: Callable[[VersionUse], VersionUse]
    ) -> None:
        """Change a version's index; a version without one (older than indexes) keeps none."""
        key = naming.version_use_key(self.project, environment, version)
        self._swap_or_drop(
            key,
            lambda: self._parsed(key, VersionUse.from_json),
            lambda use: None if use is None else change(use),
        )

    def period(self, environment: str, starts: datetime) -> DeploymentPeriod | None:
        key = naming.period_key(self.project, environment, starts)
        return self._parsed(key, DeploymentPeriod.from_json)[0]

    def update_period(
        self,
        environment: str,
        starts: datetime,
        change: Callable[[DeploymentPeriod | None], DeploymentPeriod],
    ) -> None:
        key = naming.period_key(self.project, environment, starts)
        self._swap_or_drop(key, lambda: self._parsed(key, DeploymentPeriod.from_json), change)

    def overwrite(self, environment: str, index: VersionUse | DeploymentPeriod) -> None:
        """`repair`'s write: the index rebuilt from the record replaces whatever is there."""
        if isinstance(index, VersionUse):
            key = naming.version_use_key(self.project, environment, index.version)
        else:
            key = naming.period_key(self.project, environment, index.starts)
        self.write(key, index.to_json())

    def _parsed(self, key: str, parse: Callable[[bytes, str], T]) -> tuple[T | None, str | None]:
        found = self.read(key)
        if found is None:
            return None, None
        try:
            return parse(found[0], f"s3://{self.bucket}/{key}"), found[1]
        except BadInput:
            return None, found[1]

    def _swap_or_drop(
        self,
        key: str,
        read: Callable[[], tuple[Index | None, str | None]],
        change: Callable[[Index | None], Index | None],
    ) -> None:
        """Compare-and-swap an index (`change` giving None keeps none). One that cannot be
        updated is removed instead: its views then read the record, slower but never wrong.
        Only when that fails too does the error stop the deploy, before its lock goes."""

        def write(index: Index | None, etag: str | None) -> str | None:
            if index is None:
                return "unchanged"
            return self.write(key, index.to_json(), etag=etag, create=etag is None)

        try:
            self.swap(read, write, change, f"s3://{self.bucket}/{key}")
        except ReleaseError:
            self.delete(key)
