"""The least-privilege IAM policy for one project: exactly the calls tf-release makes, on exactly
the parameters and objects of its project, bucket and environments."""

from typing import Any

from tf_release.model import naming
from tf_release.model.config import Config
from tf_release.model.errors import BadInput

SSM_ACTIONS = [
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:DeleteParameters",
]


def _image_pointers(config: Config, labels: list[str]) -> dict[str, Any]:
    """SSM on these labels' parameters: their images and, for environments, version pointer."""
    region = config.region or "*"

    def parameter(name: str) -> str:
        return f"arn:aws:ssm:{region}:*:parameter{name}"

    images = [parameter(naming.image_path(config.project, label)) for label in labels]
    pointers = [
        parameter(naming.version_parameter(config.project, label))
        for label in labels
        if label != naming.LATEST
    ]
    return {
        "Sid": "ImagePointers",
        "Effect": "Allow",
        "Action": SSM_ACTIONS,
        "Resource": [arn for path in images for arn in (path, f"{path}/*")] + pointers,
    }


ECS_ROLLOUTS = {
    # Read only. DescribeTaskDefinition has no resource-level permissions, and service ARNs
    # scoped by cluster would deny services with ECS's old short ARNs.
    "Sid": "CheckEcsRollouts",
    "Effect": "Allow",
    "Action": ["ecs:DescribeServices", "ecs:DescribeTaskDefinition"],
    "Resource": "*",
}


def least_privilege_policy(config: Config) -> dict[str, Any]:
    """The policy of whoever runs tf-release (CI, operators)."""
    project = config.project
    environments = list(config.environments)
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
        _image_pointers(config, [naming.LATEST, *environments]),
        {
            "Sid": "ManifestsStateAndDeployments",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": objects,
        },
        {
            # The indexes beside the record (show, the board): one that cannot be updated is
            # removed, so its views read the record instead. The record itself is never deleted.
            "Sid": "Indexes",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [
                f"arn:aws:s3:::{config.bucket}/{naming.index_prefix(project, env)}*"
                for env in environments
            ],
        },
        {
            # `tf-release doctor`'s conditional-write probe: one object a run, written and removed
            "Sid": "DoctorProbe",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{config.bucket}/{naming.doctor_prefix(project)}*",
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
    approved = [name for name, env in config.environments.items() if env.rules.approvals]
    if approved:
        statements.append(
            {
                # a deploy counts approvals; only approvers write them (approver_policy)
                "Sid": "ReadApprovals",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [_approvals(config, env) for env in approved],
            }
        )
    if any(env.ecs_services and not env.role_arn for env in config.environments.values()):
        statements.append(ECS_ROLLOUTS)  # an environment with a role reads ECS through it
    roles = sorted({env.role_arn for env in config.environments.values() if env.role_arn})
    if roles:
        statements.append(
            {
                "Sid": "AssumeEnvironmentRoles",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole"],
                "Resource": roles,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _approvals(config: Config, environment: str, name: str = "*") -> str:
    prefix = naming.approvals_prefix(config.project, environment, 1).removesuffix("v1/")
    return f"arn:aws:s3:::{config.bucket}/{prefix}{name}"


def approver_policy(config: Config) -> dict[str, Any]:
    """The policy of someone who approves and does nothing else: read the manifests and the
    approvals, and write approvals and revocations under their own STS UserId only (IAM puts
    the caller's in `${aws:userid}`), so nobody approves under another's name."""
    environments = [name for name, env in config.environments.items() if env.rules.approvals]
    if not environments:
        raise BadInput(f"no environment of {config.path} sets approvals")
    own = ["*/${aws:userid}.json", "*/${aws:userid}" + naming.REVOKED]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WhoIsApproving",
                "Effect": "Allow",
                "Action": ["sts:GetCallerIdentity"],
                "Resource": "*",
            },
            {
                "Sid": "ReadManifestsAndApprovals",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [
                    f"arn:aws:s3:::{config.bucket}/{naming.manifest_prefix(config.project, env)}*"
                    for env in environments
                ]
                + [_approvals(config, env) for env in environments],
            },
            {
                "Sid": "WriteOwnApprovals",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [_approvals(config, env, name) for env in environments for name in own],
            },
            {
                "Sid": "ListReleaseBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{config.bucket}",
            },
        ],
    }


def role_policy(config: Config, environment: str) -> dict[str, Any]:
    """The policy of an environment's `role_arn`: its own image pointers, and the ECS services
    its deploys check, in its own account."""
    env = config.environment(environment)
    if not env.role_arn:
        raise BadInput(f"environment {environment!r} has no role_arn in {config.path}")
    statements = [_image_pointers(config, [environment])]
    if env.ecs_services:
        statements.append(ECS_ROLLOUTS)
    return {"Version": "2012-10-17", "Statement": statements}
