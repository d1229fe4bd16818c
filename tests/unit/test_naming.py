from datetime import UTC, datetime

import pytest

from tf_release.model import naming
from tf_release.model.errors import BadInput

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("name", ["api", "worker-2", "a", "9lives", "search.indexer", "x_y"])
def test_valid_image_names_are_accepted(name: str) -> None:
    assert naming.check_image_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "API", "-api", ".api", "a/b", "..", "a b", "ápi", "api\n", "_api", "a" * 129]
)
def test_invalid_image_names_are_refused(name: str) -> None:
    with pytest.raises(BadInput, match="invalid image name"):
        naming.check_image_name(name)


@pytest.mark.parametrize(
    "url",
    [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:abc123",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:1.2.3",
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@{DIGEST}",
        f"registry.example.com:5000/api:v1@{DIGEST}",
        "docker.io/library/nginx:1.27-alpine",
        "localhost:5000/api:latest",
    ],
)
def test_image_references_with_tag_or_digest_are_accepted(url: str) -> None:
    assert naming.check_image_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api",
        "nginx:1.27",
        "registry.example.com/API:v1",
        "registry.example.com/api:",
        "registry.example.com/api@sha256:abc",
        "https://registry.example.com/api:v1",
        "registry.example.com/api:v1 ; rm -rf /",
        "",
    ],
)
def test_image_references_without_registry_tag_or_digest_are_refused(url: str) -> None:
    with pytest.raises(BadInput, match="invalid image URL"):
        naming.check_image_url(url)


def test_a_tag_longer_than_docker_allows_is_named_as_such() -> None:
    naming.check_image_url("registry.example.com/api:" + "a" * 128)
    with pytest.raises(BadInput) as raised:
        naming.check_image_url("registry.example.com/api:" + "a" * 129)
    assert str(raised.value).endswith(
        "its tag is 129 characters long, and a tag may have at most 128"
    )


@pytest.mark.parametrize("text,number", [("v1", 1), ("v7", 7), ("v160", 160)])
def test_versions_parse(text: str, number: int) -> None:
    assert naming.parse_version(text) == number
    assert naming.format_version(number) == text


@pytest.mark.parametrize("text", ["v0", "v-1", "7", "vx", "V7", "v07", "v", "v1.0", " v1"])
def test_malformed_versions_are_refused(text: str) -> None:
    with pytest.raises(BadInput, match="invalid version"):
        naming.parse_version(text)


def test_times_without_a_zone_are_utc() -> None:
    assert naming.parse_time("2026-11-24T14:00") == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert naming.parse_time("2026-11-24T15:00+01:00") == datetime(2026, 11, 24, 14, tzinfo=UTC)


def test_times_that_do_not_parse_are_refused() -> None:
    with pytest.raises(BadInput, match="invalid time"):
        naming.parse_time("last tuesday")


def test_key_layout_matches_the_design_document() -> None:
    assert naming.image_parameter("catalogue", "latest", "api") == "/catalogue/image_ids/latest/api"
    assert (
        naming.manifest_key("catalogue", "stage", 7) == "catalogue/release_manifests/stage/v7.json"
    )


def test_deployment_keys_list_newest_first() -> None:
    older = naming.deployment_key(
        "p", "stage", datetime(2026, 1, 1, tzinfo=UTC), 1, "succeeded", "a"
    )
    newer = naming.deployment_key("p", "stage", datetime(2026, 6, 1, tzinfo=UTC), 2, "failed", "b")
    assert newer < older


def test_reasons_must_say_something_and_not_too_much() -> None:
    assert naming.check_reason("  fix the search bug ") == "fix the search bug"
    for reason in ["", "   ", "x" * 1001, "bell\x07"]:
        with pytest.raises(BadInput):
            naming.check_reason(reason)


@pytest.mark.parametrize(
    ("identity", "shown"),
    [
        ("arn:aws:sts::123456789012:assumed-role/deployer/alice", "alice"),
        ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/alice@example.com", "alice"),
        ("arn:aws:iam::123456789012:user/ops/bob", "bob"),
        ("ci-runner", "ci-runner"),
    ],
)
def test_a_person_is_the_name_in_an_identity(identity: str, shown: str) -> None:
    assert naming.person(identity) == shown
