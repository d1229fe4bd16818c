"""Whether the images a release names still exist in ECR (lifecycle policies expire old ones)."""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from tf_release import naming
from tf_release.aws import AwsSession, aws_errors, error_code

GONE = {"ImageNotFoundException", "RepositoryNotFoundException"}


class ImageRegistry:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    def missing(self, urls: Iterable[str]) -> list[str]:
        """The ECR images among `urls` that ECR no longer has, one DescribeImages each.

        Images in other registries cannot be checked here and count as present.
        """
        images = [image for url in sorted(set(urls)) if (image := naming.parse_ecr(url))]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(self._exists, images))
        return [image.url for image, present in zip(images, found, strict=True) if not present]

    def _exists(self, image: naming.EcrImage) -> bool:
        ecr = self.session.client("ecr", region=image.region)
        wanted = {"imageDigest": image.digest} if image.digest else {"imageTag": image.tag}
        with aws_errors(f"looking up {image.url} in ECR"):
            try:
                ecr.describe_images(
                    registryId=image.account,
                    repositoryName=image.repository,
                    imageIds=[wanted],
                )
            except ClientError as error:
                if error_code(error) in GONE:
                    return False
                raise
        return True
