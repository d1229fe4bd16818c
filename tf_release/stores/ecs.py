"""What ECS runs: the services a deploy should have rolled out, and the images of their task
definitions (read only; Terraform makes the changes)."""

from collections.abc import Iterable
from typing import Any

from tf_release.model.errors import AwsFailure
from tf_release.stores.aws import AwsSession, aws_errors

BATCH = 10  # DescribeServices takes at most ten services a request


def split_service(service: str) -> tuple[str, str]:
    """`"cluster/service"` as (cluster, service); config.py checks the form."""
    cluster, _, name = service.partition("/")
    return cluster, name


class EcsServices:
    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self._images: dict[str, dict[str, str]] = {}

    def describe(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Each `"cluster/service"`'s description, in ⌈n/10⌉ DescribeServices per cluster.

        A service ECS does not know (or that was deleted) is an error naming it: a gate that
        cannot see a service must not pass it.
        """
        clusters: dict[str, list[str]] = {}
        for service in dict.fromkeys(services):
            cluster, name = split_service(service)
            clusters.setdefault(cluster, []).append(name)
        ecs = self.session.client("ecs")
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for cluster, names in clusters.items():
            for start in range(0, len(names), BATCH):
                batch = names[start : start + BATCH]
                with aws_errors(f"describing ECS services {', '.join(batch)} in cluster {cluster}"):
                    answer = ecs.describe_services(cluster=cluster, services=batch)
                for failure in answer.get("failures", []):
                    name = failure.get("arn", "").rpartition("/")[2]
                    missing.append(f"{cluster}/{name} ({failure.get('reason', 'unknown')})")
                for description in answer.get("services", []):
                    service = f"{cluster}/{description['serviceName']}"
                    if description.get("status") == "INACTIVE":
                        missing.append(f"{service} (INACTIVE: deleted)")
                    else:
                        found[service] = description
        if missing:
            raise AwsFailure(
                f"ECS has no service {', '.join(missing)}: check `ecs_services` in "
                "tf-release.toml and the region"
            )
        return found

    def images(self, task_definition_arn: str) -> dict[str, str]:
        """{container name: image} of a task definition; a revision never changes, so each is
        read once a run."""
        if task_definition_arn not in self._images:
            ecs = self.session.client("ecs")
            with aws_errors(f"describing ECS task definition {task_definition_arn}"):
                answer = ecs.describe_task_definition(taskDefinition=task_definition_arn)
            containers = answer["taskDefinition"].get("containerDefinitions", [])
            self._images[task_definition_arn] = {c["name"]: c["image"] for c in containers}
        return self._images[task_definition_arn]
