"""The one place boto3 sessions and clients are made, and AWS errors become one-line messages.

boto3 is imported on first use so that `--help`, `--version` and bad input stay fast.
"""

import html
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from tf_release.model.errors import AwsFailure, BadInput

# botocore's standard mode: throttling, 5xx and connection errors are retried with exponential
# backoff and jitter; five attempts ride out a burst in a few seconds without hiding an outage.
DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthorizationError",
}

RETRIES: Any = {"mode": "standard", "max_attempts": 5}

# SSM's PutParameter allows a few requests a second per account and region (3 by default, more
# with higher throughput turned on). Once SSM throttles a session's write, its writes are paced
# under that limit rather than retried against it; until then (a deploy that changes a few
# images, anything against a local endpoint) they go at once.
SSM_WRITES_VARIABLE = "TF_RELEASE_SSM_WRITES_PER_SECOND"
SSM_WRITES_PER_SECOND = 3.0
# Paced a little under the limit, so that a request the network delays does not reach AWS a
# moment before its bucket refills; the burst lets a deploy that changes few images go at once.
PACE_MARGIN = 0.9
PARAMETER_LIMIT = 10_000  # standard parameters an account may hold in a region


class TokenBucket:
    """One token a request, refilled at `rate` a second up to `burst`: threads reserve their
    slot under a lock and sleep outside it, so a pool of writers keeps an even pace."""

    def __init__(
        self,
        rate: float,
        burst: float,
        tokens: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst if tokens is None else tokens
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait:
            self._sleep(wait)
        return wait


def ssm_write_limit() -> float:
    """PutParameter's limit for this account: 3 a second unless TF_RELEASE_SSM_WRITES_PER_SECOND
    says the account has more."""
    text = os.environ.get(SSM_WRITES_VARIABLE, "").strip()
    if not text:
        return SSM_WRITES_PER_SECOND
    try:
        limit = float(text)
    except ValueError:
        limit = 0.0
    if not 0 < limit < float("inf"):
        raise BadInput(f"{SSM_WRITES_VARIABLE} must be a number of writes a second, not {text!r}")
    return limit


def ssm_write_pace() -> TokenBucket:
    """Starts empty: it is made when SSM has just said its bucket is."""
    limit = ssm_write_limit()
    return TokenBucket(limit * PACE_MARGIN, max(1.0, float(int(limit))), tokens=0.0)


ROLE_SESSION_NAME = "tf-release"


class AwsSession:
    """Credentials from the standard chain (profiles, AWS_* variables, AWS_ENDPOINT_URL), or
    from a role assumed with them (`assume`)."""

    def __init__(
        self,
        profile: str | None = None,
        region: str | None = None,
        role_arn: str | None = None,
        source: "AwsSession | None" = None,
        requests: "Counter[str] | None" = None,
    ) -> None:
        self.profile = profile
        self.region = region
        self.role_arn = role_arn
        self._source = source
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        # "s3.PutObject" → HTTP requests sent, retries too (shared with sessions assumed from it)
        self.requests: Counter[str] = Counter() if requests is None else requests
        self._ssm_writes: TokenBucket | None = None  # once throttled: one pace for its SSM clients
        self._pace_lock = threading.Lock()

    def assume(self, role_arn: str) -> "AwsSession":
        """A session acting as `role_arn`, assumed with this session's credentials on first use
        and renewed by botocore before they expire (a long Terraform run outlives an hour)."""
        return AwsSession(self.profile, self.region, role_arn, source=self, requests=self.requests)

    @cached_property
    def _session(self) -> Any:
        import boto3

        with aws_errors("opening an AWS session"):
            if self._source is None or self.role_arn is None:
                return boto3.Session(profile_name=self.profile, region_name=self.region)
            return boto3.Session(
                botocore_session=_role_session(
                    self._source._session, self.role_arn, self._count, self.profile
                ),
                region_name=self.region,
            )

    def client(self, service: str, region: str | None = None) -> Any:
        """One client per service (and region, where a resource names its own)."""
        key = f"{service}@{region}" if region else service
        with self._clients_lock:  # the ECR pools ask from eight threads at once: build one
            if key not in self._clients:
                self._clients[key] = self._new_client(service, region)
            return self._clients[key]

    def _new_client(self, service: str, region: str | None) -> Any:
        with aws_errors(f"creating the {service} client"):
            client = self._session.client(service, region_name=region, config=_client_config())
        client.meta.events.register("before-send", self._count)
        if service == "s3":
            _check_conditional_writes(client)
        if service == "ssm":
            ssm_write_limit()  # a bad TF_RELEASE_SSM_WRITES_PER_SECOND, said at once
            # every attempt, retries too, waits its turn once SSM has throttled one
            client.meta.events.register("before-send.ssm.PutParameter", self._pace_ssm_write)
            client.meta.events.register("needs-retry.ssm.PutParameter", self._throttled)
        return client

    def _pace_ssm_write(self, **kwargs: Any) -> None:
        pace = self._ssm_writes
        if pace is not None:
            pace.take()

    def _throttled(self, response: Any = None, **kwargs: Any) -> None:
        """Start pacing SSM writes at the first ThrottlingException (botocore still retries it)."""
        if response is None or self._ssm_writes is not None:
            return
        if response[1].get("Error", {}).get("Code") == "ThrottlingException":
            with self._pace_lock:
                if self._ssm_writes is None:
                    self._ssm_writes = ssm_write_pace()

    def _count(self, event_name: str, **kwargs: Any) -> None:
        self.requests[event_name.removeprefix("before-send.")] += 1

    def caller_arn(self) -> str:
        """Who is acting, as AWS sees it; never taken from anything the user can set."""
        with aws_errors("asking STS who you are"):
            return str(self.client("sts").get_caller_identity()["Arn"])

    def caller(self) -> tuple[str, str]:
        """Who is acting: the ARN, and the UserId that IAM policies name as `${aws:userid}`."""
        with aws_errors("asking STS who you are"):
            identity = self.client("sts").get_caller_identity()
        return str(identity["Arn"]), str(identity["UserId"])


def _role_session(source: Any, role_arn: str, count: Any, profile: str | None) -> Any:
    """A botocore session whose credentials come from assuming `role_arn` as `source`."""
    import botocore.session
    from botocore.credentials import (
        AssumeRoleCredentialFetcher,
        CredentialProvider,
        DeferredRefreshableCredentials,
    )

    def sts_client(*args: Any, **kwargs: Any) -> Any:
        client = source._session.create_client(*args, **kwargs)  # boto3's botocore session
        client.meta.events.register("before-send", count)
        return client

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=source.get_credentials(),
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME},
    )

    class AssumedRole(CredentialProvider):
        METHOD = "assume-role"

        def load(self) -> Any:
            return DeferredRefreshableCredentials(
                method=self.METHOD, refresh_using=_fetching(role_arn, fetcher.fetch_credentials)
            )

    # the profile still gives the region and settings; the role, first in the chain, the keys
    session = botocore.session.Session(profile=profile)
    session.get_component("credential_provider").providers.insert(0, AssumedRole())
    return session


def _fetching(role_arn: str, fetch: Any) -> Any:
    """botocore raises assume-role failures from deep inside a request; name the role."""

    def fetch_named() -> Any:
        with aws_errors(f"assuming role {role_arn}"):
            return fetch()

    return fetch_named


# botocore gave S3's PutObject IfNoneMatch in 1.35.10 and IfMatch in 1.35.69; every state update
# and every lock is a conditional write. pyproject.toml asks for it, but an environment that holds
# botocore back would otherwise fail each write with "Unknown parameter in input".
BOTOCORE_NEEDED = "1.35.69"


def _check_conditional_writes(s3: Any) -> None:
    """Refuse, in one line, a botocore whose S3 model has no conditional PutObject."""
    members = s3.meta.service_model.operation_model("PutObject").input_shape.members
    if "IfMatch" not in members or "IfNoneMatch" not in members:
        import botocore

        raise AwsFailure(
            f"botocore {botocore.__version__} is too old: tf-release needs botocore >= "
            f"{BOTOCORE_NEEDED} (conditional writes): pip install -U boto3"
        )


def _client_config() -> Any:
    from botocore.config import Config

    return Config(retries=RETRIES, connect_timeout=5, read_timeout=60)


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(doing: str, bucket: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into AwsFailure with what to fix; other errors pass through."""
    import botocore.exceptions as bce
    from botocore.parsers import ResponseParserError

    try:
        yield
    except (bce.NoCredentialsError, bce.PartialCredentialsError):
        raise AwsFailure(
            f"no AWS credentials while {doing}: set AWS_PROFILE (or --profile), "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except bce.ProfileNotFound as error:
        raise AwsFailure(f"{error}: check --profile / AWS_PROFILE and ~/.aws/config") from None
    except bce.NoRegionError:
        raise AwsFailure(
            f"no AWS region while {doing}: set `region` in tf-release.toml, --region or AWS_REGION"
        ) from None
    except bce.EndpointConnectionError as error:
        raise AwsFailure(f"cannot reach AWS while {doing}: {error}") from None
    except bce.ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            raise AwsFailure(
                f"bucket {bucket or '(unknown)'} does not exist: create it or fix `bucket` "
                "in tf-release.toml"
            ) from None
        if code == "ParameterLimitExceeded":
            raise AwsFailure(
                f"AWS error while {doing}: ParameterLimitExceeded: this account and region hold "
                f"the {PARAMETER_LIMIT:,} standard parameters SSM allows: delete parameters "
                "nobody uses (`tf-release doctor` counts this project's), or set the "
                "default parameter tier to Intelligent-Tiering (`aws ssm update-service-setting "
                "--setting-id /ssm/parameter-store/default-parameter-tier --setting-value "
                "Intelligent-Tiering`)"
            ) from None
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in DENIED or status == 403:
            detail = f" ({code}: {message})" if code in DENIED else ""
            raise AwsFailure(
                f"AWS denied access while {doing}{detail}: check your credentials "
                "and that your IAM policy allows it (see `tf-release iam-policy`)"
            ) from None
        raise AwsFailure(f"AWS error while {doing}: {code}: {one_line(message)}") from None
    except (bce.BotoCoreError, ResponseParserError) as error:
        raise AwsFailure(f"AWS error while {doing}: {one_line(str(error))}") from None


MARKUP = re.compile(r"<[^>]*>")
LONGEST = 300  # characters of an AWS message kept: a proxy's error page says little past that


def one_line(text: str) -> str:
    """An AWS message as one line: botocore splits some over lines (the cause on the second),
    and a proxy or load balancer answering 5xx may send a whole HTML page."""
    plain = " ".join(html.unescape(MARKUP.sub(" ", text)).split())
    return plain if len(plain) <= LONGEST else plain[: LONGEST - 1] + "…"
