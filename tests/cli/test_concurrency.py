"""Several people or CI jobs preparing the same environment at once."""

from tests.conftest import Cli
from tests.support.project import BUCKET, image
from tf_release import release


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
