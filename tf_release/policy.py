"""The least-privilege IAM policy for one project: exactly the calls tf-release makes, on exactly
the parameters and objects of its project, bucket and environments."""

from typing import Any

from tf_release import naming
from tf_release.config import Config

SSM_ACTIONS = [
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:DeleteParameters",
]


def least_privilege_policy(config: Config) -> dict[str, Any]:
    region = config.region or "*"
    project = config.project
    environments = list(config.environments)
    labels = [naming.LATEST, *environments]

    def parameter(name: str) -> str:
        return f"arn:aws:ssm:{region}:*:parameter{name}"

    pointers = [
        arn
        for label in labels
        for arn in (
            parameter(naming.image_path(project, label)),
            parameter(naming.image_path(project, label)) + "/*",
        )
    ] + [parameter(naming.version_parameter(project, env)) for env in environments]
    objects = [
        f"arn:aws:s3:::{config.bucket}/{prefix}*"
        for env in environments
        for prefix in (
            naming.manifest_prefix(project, env),
            naming.state_prefix(project, env),
            naming.deployment_prefix(project, env),
        )
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WhoIsReleasing",
            "Effect": "Allow",
            "Action": ["sts:GetCallerIdentity"],
            "Resource": "*",
        },
        {"Sid": "ImagePointers", "Effect": "Allow", "Action": SSM_ACTIONS, "Resource": pointers},
        {
            "Sid": "ManifestsStateAndDeployments",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": objects,
        },
        {
            # Listing finds deployment records; it also makes S3 answer 404, not 403, for an
            # object that does not exist yet (a new environment's state).
            "Sid": "ListReleaseBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": f"arn:aws:s3:::{config.bucket}",
        },
        {
            "Sid": "CheckImagesStillExist",
            "Effect": "Allow",
            "Action": ["ecr:DescribeImages"],
            "Resource": "arn:aws:ecr:*:*:repository/*",
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}
