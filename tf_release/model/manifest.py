"""Release manifests: an immutable, numbered set of image URLs for one environment."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tf_release.model import naming, schemas
from tf_release.model.errors import BadInput


@dataclass(frozen=True)
class Manifest:
    project: str
    environment: str
    version: int
    images: dict[str, str]
    reason: str
    created_at: datetime
    created_by: str
    source: str  # "latest" (a label), "stage@v5" (what stage ran) or "v3" (a rollback)
    reverts: int | None = None  # a rollback: the version it took out of service
    digests: dict[str, str] = field(default_factory=dict)  # ECR images: what each tag named

    def held(self, pin: bool = True) -> dict[str, str]:
        """What SSM holds for this manifest: each image pinned to its digest (`REPO@sha256:…`)
        where one is recorded and `pin`, else as written."""
        return pinned(self.images, self.digests if pin else {})

    @property
    def name(self) -> str:
        return naming.format_version(self.version)

    @property
    def sha256(self) -> str:
        """The checksum stored with it: what an approval names, beside the version."""
        return _digest(self._body())

    def to_document(self) -> dict[str, Any]:
        document = self._body()
        document["sha256"] = _digest(document)
        schemas.validate("manifest", document, f"manifest {self.name} of {self.environment}")
        return document

    def to_json(self) -> bytes:
        return (json.dumps(self.to_document(), indent=2, sort_keys=True) + "\n").encode()

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "project": self.project,
            "environment": self.environment,
            "version": self.name,
            "images": dict(sorted(self.images.items())),
            "reason": self.reason,
            "created_at": naming.format_time(self.created_at),
            "created_by": self.created_by,
            "source": self.source,
        }
        if self.reverts is not None:  # only rollbacks carry it: older checksums stay valid
            body["reverts"] = naming.format_version(self.reverts)
        if self.digests:  # likewise: a manifest without digests pins nothing
            body["digests"] = dict(sorted(self.digests.items()))
        return body

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Manifest":
        """Validate a stored manifest (schema, names, URLs, checksum) before anything uses it."""
        document = schemas.load("manifest", data, where)
        reverts = document.get("reverts")
        try:
            for image, url in document["images"].items():
                naming.check_image_name(image)
                naming.check_image_url(url)
            manifest = cls(
                project=document["project"],
                environment=document["environment"],
                version=naming.parse_version(document["version"]),
                images=dict(document["images"]),
                reason=document["reason"],
                created_at=naming.parse_time(document["created_at"]),
                created_by=document["created_by"],
                source=document["source"],
                reverts=None if reverts is None else naming.parse_version(reverts),
                digests=dict(document.get("digests", {})),
            )
        except BadInput as error:
            raise BadInput(f"{where}: {error}") from None
        if document["sha256"] != _digest(manifest._body()):
            raise BadInput(
                f"{where}: checksum mismatch: the object was changed after it was written"
            )
        return manifest


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def pinned(images: dict[str, str], digests: dict[str, str]) -> dict[str, str]:
    """Each image at its digest where one is known (`REPO@sha256:…`), else as written."""
    return {
        name: naming.pin(url, digests[name]) if name in digests else url
        for name, url in images.items()
    }


def described(images: dict[str, str], digests: dict[str, str]) -> dict[str, str]:
    """Images as people compare them: a tag with the digest it named (`…:1.4 (sha256:ab12…)`),
    so a moved tag shows as a change."""
    return _with_digests(
        images, digests, lambda url, digest: f"{url} ({naming.short_digest(digest)})"
    )


def referenced(images: dict[str, str], digests: dict[str, str]) -> dict[str, str]:
    """Images whole, as programs read them: a tag with the digest it named (`…:1.4@sha256:…`,
    a reference Docker and `publish` accept)."""
    return _with_digests(images, digests, lambda url, digest: f"{url}@{digest}")


def _with_digests(
    images: dict[str, str], digests: dict[str, str], form: Callable[[str, str], str]
) -> dict[str, str]:
    """Each image with the digest recorded for it, unless its URL names one itself."""
    return {
        name: form(url, digests[name]) if name in digests and naming.digest_in(url) is None else url
        for name, url in images.items()
    }


def images_digest(images: dict[str, str], digests: dict[str, str]) -> str:
    """A short fingerprint of a set of images (and the digests they named), kept in the
    environment state so that a retry can tell it would write the newest manifest again
    without reading it."""
    return _digest({"images": images, **({"digests": digests} if digests else {})})


@dataclass(frozen=True)
class ImageChanges:
    """What moving from one set of images to another changes."""

    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    unchanged: dict[str, str] = field(default_factory=dict)
    # an image as shown → the whole reference it stands for (`…:1.4@sha256:…`): for --json
    whole: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def count(self) -> int:
        """How many images change: the SSM writes a deploy makes."""
        return len(self.added) + len(self.changed) + len(self.removed)

    @property
    def empty(self) -> bool:
        return self.count == 0

    def to_document(self) -> dict[str, Any]:
        """Digests whole: what a program reads is never the shortened text people see."""

        def whole(shown: str) -> str:
            return self.whole.get(shown, shown)

        return {
            "added": {name: whole(url) for name, url in self.added.items()},
            "changed": {
                name: {"from": whole(old), "to": whole(new)}
                for name, (old, new) in self.changed.items()
            },
            "removed": {name: whole(url) for name, url in self.removed.items()},
            "unchanged": sorted(self.unchanged),
        }


def compare_images(
    before: dict[str, str],
    before_digests: dict[str, str],
    after: dict[str, str],
    after_digests: dict[str, str],
) -> ImageChanges:
    """What moving from one set of images (with the digests their tags named) to another
    changes, compared as people read them (a moved tag is a change); its document keeps the
    digests whole."""
    shown_before, shown_after = described(before, before_digests), described(after, after_digests)
    whole = {
        shown[name]: reference
        for shown, images, digests in (
            (shown_before, before, before_digests),
            (shown_after, after, after_digests),
        )
        for name, reference in referenced(images, digests).items()
    }
    return replace(diff_images(shown_before, shown_after), whole=whole)


def diff_images(before: dict[str, str], after: dict[str, str]) -> ImageChanges:
    return ImageChanges(
        added={name: after[name] for name in sorted(after.keys() - before.keys())},
        changed={
            name: (before[name], after[name])
            for name in sorted(after.keys() & before.keys())
            if before[name] != after[name]
        },
        removed={name: before[name] for name in sorted(before.keys() - after.keys())},
        unchanged={name: url for name, url in sorted(after.items()) if before.get(name) == url},
    )
