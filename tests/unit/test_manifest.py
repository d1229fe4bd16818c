import json
from datetime import UTC, datetime

import pytest

from tests.support.project import image
from tf_release.model.errors import BadInput
from tf_release.model.manifest import Manifest, diff_images

MANIFEST = Manifest(
    project="catalogue",
    environment="stage",
    version=3,
    images={"api": image("api", "abc"), "worker": image("worker", "def")},
    reason="ship the search fix",
    created_at=datetime(2026, 11, 24, 14, 0, tzinfo=UTC),
    created_by="arn:aws:iam::123456789012:user/alice",
    source="latest",
)


def test_a_manifest_round_trips_through_json() -> None:
    assert Manifest.from_json(MANIFEST.to_json(), "here") == MANIFEST


def test_a_manifest_carries_every_required_field_and_its_checksum() -> None:
    document = json.loads(MANIFEST.to_json())
    assert document["version"] == "v3"
    assert document["created_at"] == "2026-11-24T14:00:00.000Z"
    assert set(document) == {
        "project", "environment", "version", "images", "reason",
        "created_at", "created_by", "source", "sha256",
    }  # fmt: skip


def test_a_hand_edited_manifest_fails_its_checksum() -> None:
    document = json.loads(MANIFEST.to_json())
    document["images"]["api"] = image("api", "evil")
    with pytest.raises(BadInput, match="where: checksum mismatch"):
        Manifest.from_json(json.dumps(document).encode(), "where")


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.pop("reason"), "'reason' is a required property"),
        (lambda d: d.update(version="7"), "version"),
        (lambda d: d["images"].update(API="x"), "images"),
        (lambda d: d["images"].update(api="no-tag"), "invalid image URL"),
    ],
)
def test_a_manifest_that_breaks_the_schema_is_refused_with_its_key(change, message: str) -> None:
    document = json.loads(MANIFEST.to_json())
    change(document)
    with pytest.raises(BadInput, match=message) as raised:
        Manifest.from_json(json.dumps(document).encode(), "s3://b/k.json")
    assert str(raised.value).startswith("s3://b/k.json")


def test_garbage_is_not_a_manifest() -> None:
    with pytest.raises(BadInput, match="not valid JSON"):
        Manifest.from_json(b"{nope", "k")


def test_diff_images_sorts_what_changes() -> None:
    changes = diff_images({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"})
    assert changes.added == {"d": "4"}
    assert changes.changed == {"b": ("2", "9")}
    assert changes.removed == {"c": "3"}
    assert changes.unchanged == {"a": "1"}
    assert not changes.empty
    assert diff_images({"a": "1"}, {"a": "1"}).empty
