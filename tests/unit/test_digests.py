"""Digest-pinned manifests: a manifest means the same bits forever, whatever its tags do later
(issue #13 §1)."""

from collections import Counter
from dataclasses import replace

import boto3
import pytest

from tests.support.project import PROJECT, REGION, ecr_image, image, push_image
from tf_release.flows import release, views
from tf_release.model.errors import ImagesMissing
from tf_release.stores.bundle import Stores


def push(name: str, tag: str, build: str = "1") -> tuple[str, str]:
    """`name:tag` pushed to ECR (each `build` a different image); its URL and digest.

    Pushing a tag again leaves the image it named untagged in ECR, where moto drops it: the
    test keeps it under another tag, as a registry's lifecycle policy would keep it a while."""
    client = boto3.client("ecr", region_name=REGION)
    if build != "1":
        [old] = client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": tag}])["images"]
        client.put_image(
            repositoryName=name, imageManifest=old["imageManifest"], imageTag=f"{tag}-before"
        )
    url = push_image(client, name, tag, build)
    [detail] = client.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])[
        "imageDetails"
    ]
    return url, detail["imageDigest"]


def ssm_image(label: str, name: str) -> str:
    ssm = boto3.client("ssm", region_name=REGION)
    return ssm.get_parameter(Name=f"/{PROJECT}/image_ids/{label}/{name}")["Parameter"]["Value"]


def counted(stores: Stores) -> Counter[str]:
    assert stores.session is not None
    return stores.session.requests


def test_each_image_pushed_in_the_tests_has_its_own_digest(stores: Stores) -> None:
    """moto gives a manifest without layers one of 101 random digests, so two images shared one
    about once a hundred pushes and a deleted image took the running one with it."""
    digests = {push("api", f"1.{n}")[1] for n in range(300)}
    assert len(digests) == 300


def test_prepare_records_the_digest_each_ecr_tag_names(stores: Stores) -> None:
    api, api_digest = push("api", "1.4")
    release.publish(stores, "api", api)
    prepared = release.prepare(stores, "stage", "pin it")
    assert prepared.manifest is not None
    assert prepared.manifest.images == {"api": api}
    assert prepared.manifest.digests == {"api": api_digest}


def test_a_deploy_writes_the_pinned_image_to_ssm(stores: Stores) -> None:
    api, api_digest = push("api", "1.4")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "pinned")
    assert ssm_image("stage", "api") == f"{ecr_image('api', '1.4').split(':1.4')[0]}@{api_digest}"


def test_pin_digests_false_deploys_the_tags_as_written(stores: Stores) -> None:
    stage = replace(stores.config.environments["stage"], pin_digests=False)
    stores.config = replace(
        stores.config, environments={**stores.config.environments, "stage": stage}
    )
    api, _ = push("api", "1.4")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "tags")
    assert ssm_image("stage", "api") == api


def test_images_outside_ecr_are_kept_as_written_and_not_pinned(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    prepared = release.prepare(stores, "stage", "elsewhere")
    assert prepared.manifest is not None and prepared.manifest.digests == {}
    release.apply(stores, "stage", "elsewhere", force=True)
    assert ssm_image("stage", "api") == image("api", "one")


def test_a_prepare_asks_ecr_once_per_changed_repository_only(stores: Stores) -> None:
    for name in ("api", "worker"):
        release.publish(stores, name, push(name, "1")[0])
    release.apply(stores, "stage", "first")
    release.publish(stores, "api", push("api", "2")[0])
    counted(stores).clear()
    prepared = release.prepare(stores, "stage", "api 2 only")
    assert counted(stores)["ecr.DescribeImages"] == 1  # worker keeps its recorded digest
    assert prepared.manifest is not None and set(prepared.manifest.digests) == {"api", "worker"}


def test_a_promotion_carries_the_digests_the_source_ran(stores: Stores) -> None:
    api, first = push("api", "1.4")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "1.4")
    push("api", "1.4", build="2")  # the tag moves on
    counted(stores).clear()
    prepared = release.prepare(stores, "prod", "promote")
    assert prepared.manifest is not None and prepared.manifest.digests == {"api": first}
    assert "ecr.DescribeImages" not in counted(stores)


def test_a_rollback_deploys_the_digest_that_ran_even_after_the_tag_moved(stores: Stores) -> None:
    api, first = push("api", "1.4")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "1.4")
    push("api", "1.4", build="2")
    release.publish(stores, "api", push("api", "1.5")[0])
    release.apply(stores, "stage", "1.5")
    release.rollback(stores, "stage", "1.5 is broken")
    assert ssm_image("stage", "api").endswith(f"/api@{first}")


def applied(stores: Stores, *tags: str) -> list[tuple[str, str]]:
    """api at each tag in turn, pushed, published and applied to stage: its URLs and digests."""
    pushed = []
    for tag in tags:
        pushed.append(push("api", tag))
        release.publish(stores, "api", pushed[-1][0])
        release.apply(stores, "stage", tag)
    return pushed


def test_a_rollback_to_a_digest_ecr_no_longer_has_fails_naming_it(stores: Stores) -> None:
    [(_, first), _] = applied(stores, "1.4", "1.5")
    boto3.client("ecr", region_name=REGION).batch_delete_image(
        repositoryName="api", imageIds=[{"imageDigest": first}]
    )
    with pytest.raises(ImagesMissing, match=f"api@{first}"):
        release.rollback(stores, "stage", "back")


def test_a_published_url_with_tag_and_digest_keeps_both(stores: Stores) -> None:
    api, digest = push("api", "1.4")
    release.publish(stores, "api", f"{api}@{digest}")
    counted(stores).clear()
    prepared = release.prepare(stores, "stage", "exact")
    assert prepared.manifest is not None
    assert prepared.manifest.images == {"api": f"{api}@{digest}"}
    assert prepared.manifest.digests == {"api": digest}
    assert "ecr.DescribeImages" not in counted(stores)


def test_diff_shows_a_tag_whose_digest_changed(stores: Stores) -> None:
    api, first = push("api", "1.4")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "1.4")
    release.publish(stores, "api", push("api", "1.5")[0])
    release.apply(stores, "stage", "1.5")
    _, second = push("api", "1.4", build="2")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "1.4 rebuilt")
    changes = views.diff_versions(stores, "stage", 1, 3)
    assert changes.changed == {"api": (f"{api} ({first[:13]}…)", f"{api} ({second[:13]}…)")}


def test_verify_agrees_with_a_pinned_deploy(stores: Stores) -> None:
    from tf_release.flows import drift

    release.publish(stores, "api", push("api", "1.4")[0])
    release.apply(stores, "stage", "pinned")
    assert drift.verify(stores, "stage").differences == ()


def test_a_promotion_of_a_moved_tag_is_a_change_and_history_shows_it(stores: Stores) -> None:
    from io import StringIO

    from tf_release.faces import output

    api, first = push("api", "1.4")
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "1.4")
    release.apply(stores, "prod", "promote 1.4")
    release.publish(stores, "api", push("api", "1.5")[0])
    release.apply(stores, "stage", "1.5")
    _, second = push("api", "1.4", build="2")  # rebuilt under the same tag
    release.publish(stores, "api", api)
    release.apply(stores, "stage", "1.4 rebuilt")
    prepared = release.prepare(stores, "prod", "promote the rebuilt 1.4")
    assert prepared.manifest is not None and prepared.manifest.digests == {"api": second}
    assert prepared.changes.changed == {
        "api": (f"{api} ({first[:13]}…)", f"{api} ({second[:13]}…)")
    }
    text = StringIO()
    output.history(output.console(text), views.history(stores, "prod"))
    [newest] = [line for line in text.getvalue().splitlines() if line.startswith("v2 ")]
    assert " ~api " in newest


def stage_runs_api_and_worker(stores: Stores) -> None:
    for name in ("api", "worker"):
        release.publish(stores, name, push(name, "1.0.0")[0])
    release.apply(stores, "stage", "first")


def test_diff_against_a_label_right_after_an_apply_shows_no_change_as_prepare_does(
    stores: Stores,
) -> None:
    """The label holds tags, the manifest the digests they named: an image that stays keeps
    the digest it runs with, in `diff` as in `prepare`."""
    stage_runs_api_and_worker(stores)
    assert views.promotion(stores, "stage").changes.empty
    assert release.prepare(stores, "stage", "nothing new").manifest is None


def test_diff_against_a_label_lists_exactly_what_prepare_changes(stores: Stores) -> None:
    stage_runs_api_and_worker(stores)
    api, _ = push("api", "1.1.0")
    release.publish(stores, "api", api)
    changes = views.promotion(stores, "stage").changes
    prepared = release.prepare(stores, "stage", "api 1.1.0")
    assert changes.changed.keys() == prepared.changes.changed.keys() == {"api"}
    assert changes.changed["api"][0] == prepared.changes.changed["api"][0]
    assert changes.unchanged == prepared.changes.unchanged


def test_the_changes_document_keeps_digests_whole(stores: Stores) -> None:
    [(api, first), (new, second)] = applied(stores, "1.4", "1.5")
    document = views.diff_versions(stores, "stage", 1, 2).to_document()
    assert document["changed"]["api"] == {"from": f"{api}@{first}", "to": f"{new}@{second}"}
