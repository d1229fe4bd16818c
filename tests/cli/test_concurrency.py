"""Several people or CI jobs preparing the same environment at once."""

import pytest

from tests.conftest import Cli
from tests.support.project import BUCKET, image
from tf_release.flows import release

pytestmark = pytest.mark.second_aws


def test_eight_concurrent_prepares_get_eight_consecutive_versions(cli: Cli) -> None:
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    processes = [cli.start("prepare", "-e", "stage", "-r", f"job {n}", "--force") for n in range(8)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 8, outputs

    announced = sorted(int(out.split()[1].removeprefix("v")) for out, _ in outputs)
    assert announced == list(range(1, 9))
    keys = [
        item["Key"]
        for item in cli.client("s3").list_objects_v2(
            Bucket=BUCKET, Prefix="catalogue/release_manifests/stage/"
        )["Contents"]
    ]
    assert sorted(keys) == sorted(
        f"catalogue/release_manifests/stage/v{n}.json" for n in range(1, 9)
    )
    reasons = {stores.manifests.get("stage", n).reason for n in range(1, 9)}  # type: ignore[union-attr]
    assert reasons == {f"job {n}" for n in range(8)}
    assert stores.states.get("stage")[0].latest_version == 8


def test_concurrent_identical_prepares_make_one_manifest(cli: Cli) -> None:
    """Four CI jobs preparing the same new image at once: the conditional create picks who
    writes v1, and the others, finding it holds their images, reuse it instead of writing v2."""
    release.publish(cli.stores(), "api", image("api", "one"))
    processes = [cli.start("prepare", "-e", "stage", "-r", f"job {n}") for n in range(4)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, outputs
    keys = cli.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="catalogue/release_manifests/stage/"
    )["Contents"]
    assert [item["Key"] for item in keys] == ["catalogue/release_manifests/stage/v1.json"]
    assert all(" v1 " in f" {out} " for out, _ in outputs), outputs
