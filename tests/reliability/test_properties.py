"""Guarantee 8, property-based: names, URLs, versions and times are either accepted exactly when
they follow the rules, or refused with BadInput; nothing else ever escapes."""

import string

from hypothesis import given
from hypothesis import strategies as st

from tf_release.model import naming
from tf_release.model.errors import BadInput
from tf_release.model.manifest import Manifest

NAME_CHARS = string.ascii_lowercase + string.digits + "._-"
names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_lowercase + string.digits),
    st.text(NAME_CHARS, max_size=40),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
digests = st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)
paths = st.lists(
    st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)?", fullmatch=True), min_size=1, max_size=3
)
registries = st.sampled_from(
    ["123456789012.dkr.ecr.eu-west-1.amazonaws.com", "registry.example.com:5000", "localhost"]
)


@given(names)
def test_every_name_made_of_the_allowed_characters_is_accepted(name: str) -> None:
    assert naming.check_image_name(name) == name


@given(st.text(max_size=50))
def test_any_text_is_a_valid_name_exactly_when_it_follows_the_rule(text: str) -> None:
    valid = (
        0 < len(text) <= 128
        and text[0] in string.ascii_lowercase + string.digits
        and all(c in NAME_CHARS for c in text)
    )
    try:
        naming.check_image_name(text)
        assert valid
    except BadInput:
        assert not valid


@given(registries, paths, st.one_of(tags.map(lambda t: ":" + t), digests.map(lambda d: "@" + d)))
def test_references_with_a_tag_or_digest_are_accepted(
    registry: str, path: list[str], ref: str
) -> None:
    url = f"{registry}/{'/'.join(path)}{ref}"
    assert naming.check_image_url(url) == url


@given(registries, paths)
def test_references_without_tag_or_digest_are_refused(registry: str, path: list[str]) -> None:
    try:
        naming.check_image_url(f"{registry}/{'/'.join(path)}")
    except BadInput:
        return
    raise AssertionError("accepted a reference without tag or digest")


@given(st.integers(min_value=1, max_value=999_999_999))
def test_versions_round_trip(number: int) -> None:
    assert naming.parse_version(naming.format_version(number)) == number


@given(st.text(max_size=12))
def test_any_text_is_a_version_or_bad_input(text: str) -> None:
    try:
        number = naming.parse_version(text)
    except BadInput:
        return
    assert text == f"v{number}" and number >= 1


@given(st.text(max_size=40))
def test_any_text_is_a_time_or_bad_input(text: str) -> None:
    try:
        moment = naming.parse_time(text)
    except BadInput:
        return
    assert moment.tzinfo is not None


@given(st.binary(max_size=200))
def test_any_bytes_are_a_manifest_or_bad_input(data: bytes) -> None:
    try:
        Manifest.from_json(data, "s3://bucket/key")
    except BadInput as error:
        assert str(error).startswith("s3://bucket/key")
