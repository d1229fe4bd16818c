"""Whether the images a release names still exist in ECR (lifecycle policies expire old ones)."""

from collections.abc import Iterable

from botocore.exceptions import ClientError

from tf_release.model import naming
from tf_release.stores.aws import AwsSession, aws_errors, error_code
from tf_release.stores.parallel import in_parallel

GONE = {"ImageNotFoundException", "RepositoryNotFoundException"}


class ImageRegistry:
    def __init__(self, session: AwsSession) -> None:
        self.session = session

    def missing(self, urls: Iterable[str]) -> list[str]:
        """The ECR images among `urls` that ECR no longer has, one DescribeImages each.

        Images in other registries cannot be checked here and count as present.
        """
        images = [image for url in sorted(set(urls)) if (image := naming.parse_ecr(url))]
        found = in_parallel(self._exists, images)
        return [image.url for image, present in zip(images, found, strict=True) if not present]

    def digests(self, urls: Iterable[str]) -> dict[str, str]:
        """The digest ECR holds for each ECR image among `urls` (a URL naming its digest needs no
        request): one DescribeImages per repository, the repositories in parallel.

        Images ECR does not have are left out; other registries' images are not resolved."""
        found: dict[str, str] = {}
        wanted: dict[tuple[str, str, str], list[naming.EcrImage]] = {}
        for url in sorted(set(urls)):
            image = naming.parse_ecr(url)
            if image is None:
                continue
            if image.digest:
                found[url] = image.digest
            else:
                wanted.setdefault((image.account, image.region, image.repository), []).append(image)
        for resolved in in_parallel(self._resolve, wanted.values()):
            found.update(resolved)
        return found

    def _resolve(self, images: list[naming.EcrImage]) -> dict[str, str]:
        """The digests of tags of one repository, in one request (tags ECR lacks are left out)."""
        first = images[0]
        ecr = self.session.client("ecr", region=first.region)
        with aws_errors(f"looking up {first.repository} images in ECR"):
            try:
                response = ecr.describe_images(
                    registryId=first.account,
                    repositoryName=first.repository,
                    imageIds=[{"imageTag": image.tag} for image in images],
                )
            except ClientError as error:
                if error_code(error) not in GONE:
                    raise
                if len(images) == 1:
                    return {}
                # ECR refuses the whole request for one missing tag: ask for each alone
                return {k: v for image in images for k, v in self._resolve([image]).items()}
        by_tag = {
            tag: detail["imageDigest"]
            for detail in response.get("imageDetails", [])
            for tag in detail.get("imageTags", [])
        }
        return {image.url: by_tag[image.tag] for image in images if image.tag in by_tag}

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
