"""Image pointers in SSM Parameter Store: `/{project}/image_ids/{label}/{image}` → image URL."""

import json
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tf_release.model import naming
from tf_release.model.errors import BadInput
from tf_release.stores.aws import AwsSession, aws_errors, error_code
from tf_release.stores.parallel import in_parallel

# A small pool keeps a write in flight while the one before it travels; the session paces
# PutParameter under SSM's limit (aws.TokenBucket), so more writers would only wait longer.
WRITERS = 4
VALUE_LIMIT = 4096  # bytes in a standard parameter's value
# SSM answers TooManyUpdates to concurrent writes of one parameter, and botocore does not retry it
UPDATE_ATTEMPTS = 6


@dataclass(frozen=True)
class ReleasePointer:
    """`/{project}/release_version/{env}`: the manifest whose images SSM holds, and how many."""

    version: int
    images: int

    def to_text(self) -> str:
        return json.dumps({"version": naming.format_version(self.version), "images": self.images})

    @classmethod
    def parse(cls, text: str, where: str) -> "ReleasePointer":
        try:
            document = json.loads(text)
            return cls(naming.parse_version(document["version"]), int(document["images"]))
        except (ValueError, TypeError, KeyError, BadInput):
            raise BadInput(f"SSM parameter {where} is not a tf-release version pointer") from None


class ImageStore:
    """The image pointers of every label; a label whose environment has a `role_arn` is read and
    written in that role's account (`label_sessions`), the rest with the caller's session."""

    def __init__(
        self,
        session: AwsSession,
        project: str,
        label_sessions: Mapping[str, AwsSession] | None = None,
    ) -> None:
        self.session = session
        self.project = project
        self.label_sessions = dict(label_sessions or {})

    def _ssm(self, label: str) -> Any:
        return self.label_sessions.get(label, self.session).client("ssm")

    def where(self, label: str) -> str:
        """Where a label's parameters were read: a wrong region finds none, and says so."""
        return f"SSM of {self._ssm(label).meta.region_name}"

    def read(
        self, label: str, expected: int | None = None, *, tolerant: bool = False
    ) -> dict[str, str]:
        """Every image under a label, by path, ten parameters a request (SSM's maximum).

        SSM answers a full page with a NextToken even when nothing follows; with `expected`
        (the count tf-release wrote) the read stops once it has them all, saving that request.
        `tolerant` keeps hand-written bad values as they are, for a put-back that overwrites them.
        """
        path = naming.image_path(self.project, label)
        images: dict[str, str] = {}
        with aws_errors(f"reading {path} from SSM"):
            pages = (
                self._ssm(label)
                .get_paginator("get_parameters_by_path")
                .paginate(
                    Path=path,
                    Recursive=False,
                    WithDecryption=True,
                    PaginationConfig={"PageSize": 10},
                )
            )
            for page in pages:
                images.update(self._images(page["Parameters"], tolerant))
                if expected is not None and len(images) >= expected:
                    break
        return images

    def read_named(self, label: str, images: Iterable[str]) -> dict[str, str]:
        """Just these images of a label (those that exist), ten names a request."""
        names = [naming.image_parameter(self.project, label, image) for image in sorted(images)]
        found: dict[str, str] = {}
        for start in range(0, len(names), 10):
            batch = names[start : start + 10]
            with aws_errors(f"reading {', '.join(batch)} from SSM"):
                found.update(
                    self._images(self._ssm(label).get_parameters(Names=batch)["Parameters"])
                )
        return found

    @staticmethod
    def _images(parameters: list[dict[str, Any]], tolerant: bool = False) -> dict[str, str]:
        images = {}
        for parameter in parameters:
            image = parameter["Name"].rsplit("/", 1)[-1]
            if tolerant:
                images[image] = parameter["Value"]
                continue
            try:
                naming.check_image_name(image)
                naming.check_image_url(parameter["Value"])
            except BadInput as error:
                raise BadInput(f"SSM parameter {parameter['Name']}: {error}") from None
            images[image] = parameter["Value"]
        return images

    def put(self, label: str, image: str, url: str) -> None:
        name = naming.image_parameter(self.project, label, image)
        self._put(label, name, url)

    def _put(self, label: str, name: str, value: str) -> None:
        """PutParameter, retried with backoff when another writer is changing the same name."""
        if len(value.encode()) > VALUE_LIMIT:  # image URLs stop at 1,024 characters: never met
            raise BadInput(f"{name}: a value of over {VALUE_LIMIT} bytes does not fit in SSM")
        with aws_errors(f"writing {name} to SSM"):
            for attempt in range(1, UPDATE_ATTEMPTS + 1):
                try:
                    self._ssm(label).put_parameter(
                        Name=name, Value=value, Type="String", Overwrite=True
                    )
                    return
                except ClientError as error:
                    if error_code(error) != "TooManyUpdates" or attempt == UPDATE_ATTEMPTS:
                        raise
                time.sleep(random.uniform(0.5, 1.0) * min(0.2 * 2**attempt, 3.0))

    def replace(self, label: str, before: Mapping[str, str], after: Mapping[str, str]) -> int:
        """Make a label hold `after`, given that it holds `before`; writes only what differs."""
        writes = [(image, url) for image, url in after.items() if before.get(image) != url]
        removed = sorted(before.keys() - after.keys())
        in_parallel(lambda item: self.put(label, *item), writes, at_once=WRITERS)
        for start in range(0, len(removed), 10):
            names = [
                naming.image_parameter(self.project, label, image)
                for image in removed[start : start + 10]
            ]
            with aws_errors(f"deleting {', '.join(names)} from SSM"):
                self._ssm(label).delete_parameters(Names=names)
        return len(writes) + len(removed)

    def read_pointer(self, environment: str) -> ReleasePointer | None:
        name = naming.version_parameter(self.project, environment)
        with aws_errors(f"reading {name} from SSM"):
            try:
                value = self._ssm(environment).get_parameter(Name=name)["Parameter"]["Value"]
            except ClientError as error:
                if error_code(error) == "ParameterNotFound":
                    return None
                raise
        return ReleasePointer.parse(value, name)

    def write_pointer(self, environment: str, pointer: "ReleasePointer | None") -> None:
        """Record which manifest's images SSM now holds (and how many), for Terraform's reads."""
        name = naming.version_parameter(self.project, environment)
        with aws_errors(f"writing {name} to SSM"):
            if pointer is None:
                try:
                    self._ssm(environment).delete_parameter(Name=name)
                except ClientError as error:
                    if error_code(error) != "ParameterNotFound":
                        raise
        if pointer is not None:
            self._put(environment, name, pointer.to_text())
