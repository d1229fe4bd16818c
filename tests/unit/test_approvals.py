"""Which approvals count: of this manifest's exact bytes, by others than its author, once each."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tf_release.model.approval import Approval, may_approve, tally
from tf_release.model.manifest import Manifest

AUTHOR = "arn:aws:iam::123456789012:user/ann"
WHEN = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
MANIFEST = Manifest(
    "catalogue", "prod", 5, {"api": "registry.example.com/api:1"}, "api 1", WHEN, AUTHOR, "stage@v3"
)


def approval(who: str, manifest: Manifest = MANIFEST, minutes: int = 0) -> Approval:
    return Approval(
        "prod",
        manifest.version,
        manifest.sha256,
        f"arn:aws:iam::123456789012:user/{who}",
        f"AIDA{who.upper()}",
        WHEN + timedelta(minutes=minutes),
    )


def test_approvals_by_two_others_make_two() -> None:
    found = tally(MANIFEST, [approval("bob"), approval("cy", minutes=1)], set(), 2)
    assert not found.held and [a.approver_id for a in found.counted] == ["AIDABOB", "AIDACY"]


def test_the_author_a_revoked_one_and_another_manifests_do_not_count() -> None:
    rewritten = replace(MANIFEST, reason="rewritten")
    found = tally(
        MANIFEST,
        [approval("ann"), approval("cy", rewritten), approval("dee")],
        {"AIDADEE"},
        1,
    )
    assert found.held and found.counted == ()
    assert "it has 0" in found.describe() and AUTHOR in found.describe()


def test_an_approval_of_another_version_does_not_count() -> None:
    other = replace(MANIFEST, version=6)
    assert tally(MANIFEST, [approval("bob", other)], set(), 1).held


def test_approvers_are_arns_or_patterns() -> None:
    leads = ("arn:aws:sts::*:assumed-role/Leads/*",)
    assert may_approve("arn:aws:sts::123456789012:assumed-role/Leads/bob", leads)
    assert not may_approve("arn:aws:sts::123456789012:assumed-role/Dev/bob", leads)
    assert may_approve("anyone", ())
    assert tally(MANIFEST, [approval("bob")], set(), 1, leads).held
