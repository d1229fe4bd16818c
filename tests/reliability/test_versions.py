"""Guarantee 1: concurrent runs on one environment get distinct, consecutive versions."""

import subprocess
import sys

from tests.conftest import Cli
from tests.support.project import BUCKET, image
from tf_release.flows import release
from tf_release.model.manifest import Manifest

PROCESSES = 16
PREPARES = 10

# One process of many: ten prepares in a row, through the library the CLI calls (forced: the
# same images would otherwise reuse the newest manifest, and this counts versions).
DRIVER = """
import sys
from tf_release.model.config import load_config
from tf_release.flows.release import prepare
from tf_release.stores.bundle import open_stores
stores = open_stores(load_config(__import__("pathlib").Path(sys.argv[1])))
for n in range(int(sys.argv[3])):
    prepare(stores, "stage", f"process {sys.argv[2]} prepare {n}", force=True)
"""


def test_sixteen_processes_preparing_ten_times_each_make_v1_to_v160(cli: Cli) -> None:
    release.publish(cli.stores(), "api", image("api", "one"))
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, cli.env["TF_RELEASE_CONFIG"], str(n), str(PREPARES)],
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err

    total = PROCESSES * PREPARES
    s3 = cli.client("s3")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix="catalogue/release_manifests/stage/"
        )
        for item in page.get("Contents", [])
    ]
    assert sorted(keys) == sorted(
        f"catalogue/release_manifests/stage/v{n}.json" for n in range(1, total + 1)
    )
    reasons = set()
    for key in keys:
        manifest = Manifest.from_json(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(), key)
        assert key.endswith(f"/{manifest.name}.json")
        reasons.add(manifest.reason)
    assert len(reasons) == total  # no manifest was overwritten by another
    assert cli.stores().states.get("stage")[0].latest_version == total
