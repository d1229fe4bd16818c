"""Guarantee 8: for every command and every argument, a malformed value ends with exit code 2,
one line on stderr and no traceback, and writes nothing to SSM or S3."""

import pytest

from tests.conftest import Cli
from tests.support.assertions import assert_refused
from tests.support.project import image
from tf_release.flows import release

BAD = {
    "image": ["Api", "a/b", "../api", "a b", "ápi", "", "-api", "api\n"],
    "environment": ["Stage", "../prod", "a b", "prod/x", "latest", "qa", "", "stäge"],
    "version": ["v0", "v-1", "7", "vx", "", "v1.0", "V1", "v01"],
    "url": ["nginx", "registry.example.com/api", "api:1", "https://r.example.com/a:1", "r/a b:1"],
    "reason": ["", "   ", "x" * 1001, "bell\x07"],
    "time": ["yesterday", "2026-13-01", "", "12:00 tomorrow"],
    "label": ["Latest", "../x", "a.b", ""],  # "qa" is a label of your own: publish writes it
    "limit": ["0", "-1", "x"],
}

GOOD = {
    "image": "api",
    "environment": "stage",
    "version": "v1",
    "url": image("api", "three"),
    "reason": "a reason",
    "time": "2026-11-24T14:00Z",
    "label": "latest",
    "limit": "5",
}

# Each command with the kind of value each of its arguments takes.
COMMANDS = [
    ("publish {image} {url} --label {label}", ["image", "url", "label"]),
    ("prepare --env {environment} --reason {reason} --image {image} --from {label}",
     ["environment", "reason", "image", "label"]),
    ("deploy --env {environment} --version {version} --yes", ["environment", "version"]),
    ("apply --env {environment} --reason {reason} --image {image} --yes",
     ["environment", "reason", "image"]),
    ("rollback --env {environment} --reason {reason} --to {version} --yes",
     ["environment", "reason", "version"]),
    ("history --env {environment} --limit {limit}", ["environment", "limit"]),
    ("show --env {environment} {version}", ["environment", "version"]),
    ("status --env {environment} --at {time}", ["environment", "time"]),
    ("unlock --env {environment} --yes", ["environment"]),
    ("diff --env {environment} {version} v1", ["environment", "version"]),
    ("diff --env {environment} --against {label}", ["environment", "label"]),
]  # fmt: skip

CASES = [
    pytest.param(template, kind, bad, id=f"{template.split()[0]}-{kind}-{bad!r}")
    for template, kinds in COMMANDS
    for kind in kinds
    for bad in BAD[kind]
]


@pytest.mark.parametrize("template,kind,bad", CASES)
def test_a_malformed_argument_is_refused_and_writes_nothing(
    cli: Cli, template: str, kind: str, bad: str
) -> None:
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    release.publish(stores, "api", image("api", "two"))
    args = []
    for word in template.split():
        if word.startswith("{"):
            name = word.strip("{}")
            args.append(bad if name == kind else GOOD[name])
        else:
            args.append(word)
    assert_refused(cli, args, "")
