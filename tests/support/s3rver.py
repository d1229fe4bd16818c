"""s3rver (npm) on 127.0.0.1, started and stopped by a test fixture: a real S3 server that
ignores conditional writes (it answers 200 to a PUT with `If-None-Match: *` or a stale
`If-Match`), the kind of store `tf-release doctor` must refuse.

Installed once into .cache/s3rver (a second run downloads nothing); also
`python -m tests.support.s3rver`, which installs it, for a set-up step.
"""

import fcntl
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from tests.support.moto import free_port
from tests.support.processes import stop
from tests.support.project import REGION, ROOT

VERSION = "3.7.1"
CACHE = ROOT / ".cache" / "s3rver"
BINARY = CACHE / "node_modules" / ".bin" / "s3rver"
# s3rver checks signatures against its one built-in key pair; moto accepts any keys, so a test
# that talks to both uses these.
ACCESS_KEY = SECRET_KEY = "S3RVER"


class Unavailable(Exception):
    """s3rver cannot be had here (no node or npm, or npm cannot install it)."""


def installed() -> bool:
    try:
        found = json.loads((CACHE / "node_modules" / "s3rver" / "package.json").read_text())
    except (OSError, ValueError):
        return False
    return found.get("version") == VERSION and BINARY.exists()


INSTALL_ARGUMENTS = [
    "install",
    "--prefix",
    str(CACHE),
    "--no-save",
    "--no-audit",
    "--no-fund",
    "--no-package-lock",
    f"s3rver@{VERSION}",
]


def install() -> Path:
    """s3rver's command, installed with npm into the cache folder unless it is already there
    (one installer at a time: pytest's workers each start a session)."""
    if shutil.which("node") is None:
        raise Unavailable("s3rver needs node, and it is not on PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".install-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return BINARY
        npm = shutil.which("npm")
        if npm is None:
            raise Unavailable("installing s3rver needs npm, and it is not on PATH")
        try:
            done = subprocess.run(
                [npm, *INSTALL_ARGUMENTS], capture_output=True, text=True, timeout=300
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(f"npm did not install s3rver@{VERSION} in 300 s") from None
        if done.returncode != 0 or not installed():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"npm could not install s3rver@{VERSION}: {last}")
    return BINARY


class S3rver:
    def __init__(self, binary: Path, directory: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._buckets = 0
        self._log = log.open("wb")
        self._process = subprocess.Popen(
            [
                str(binary),
                *("--address", "127.0.0.1", "--port", str(self.port)),
                *("--directory", str(directory), "--silent"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"s3rver exited with {self._process.returncode}")
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                return
            except urllib.error.HTTPError:  # an answer (403: unsigned): it is up
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("s3rver did not start in 30 s")

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        return boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        """A bucket no test has used (the server lives for the session)."""
        self._buckets += 1
        name = f"releases-{self._buckets}"
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return name

    def stop(self) -> None:
        stop(self._process)
        self._log.close()


def main() -> None:
    try:
        print(install())
    except Unavailable as why:
        sys.exit(f"s3rver: {why}")


if __name__ == "__main__":
    main()
