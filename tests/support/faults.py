"""A fault-injecting HTTP proxy in front of the moto server, on 127.0.0.1.

The tool under test talks to it as its AWS endpoint. Each request is matched against rules that
can throttle it, fail it with a 500 or any error AWS answers, drop the connection, hold it until
the test lets go (so a test can kill the tool at an exact step), rewrite the JSON the service
answers, or cut an SSM page short (so a test can show the tool what AWS does and moto does not).
Rate limits (token buckets, per operation or shared, as SSM's are) answer `ThrottlingException`
above their rate and count what they throttled and passed. Everything else is passed through
unchanged.
"""

import contextlib
import http.client
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def operation(self) -> str:
        """`ssm.PutParameter`, `s3.PUT`, `sts.GetCallerIdentity`, `ecs.RegisterTaskDefinition`."""
        target = self.headers.get("x-amz-target", "")
        if target:
            service = "ssm" if target.startswith("AmazonSSM") else target.split(".")[0].lower()
            if "ContainerService" in target:
                service = "ecs"
            return f"{service}.{target.split('.')[-1]}"
        form = parse_qs(self.body.decode("utf-8", "replace"))
        if "Action" in form:
            return f"sts.{form['Action'][0]}"
        return f"s3.{self.method}"

    @property
    def parameter(self) -> str | None:
        """The SSM parameter a JSON-protocol request names, if any."""
        try:
            return json.loads(self.body).get("Name")
        except (ValueError, AttributeError):
            return None


@dataclass
class Rule:
    """What to do with the requests `match` picks: 'throttle', 'error', 'fail' (answer `code`
    with HTTP `status`, as the service would), 'html' (a proxy's HTML page with `status`),
    'reset', 'hold' (keep the request until the test lets go, then drop it unanswered: it never
    reaches AWS), 'rewrite' (pass it on, and answer with `rewrite` applied to the JSON of a 200
    response) or 'short-page' (an SSM page cut to its first `keep` items, with a NextToken that
    serves the rest on the next request: SSM may answer fewer than MaxResults, even none, and
    still have more).

    `every` applies the fault to every n-th matching request only; `times` stops after that many.
    """

    match: Callable[[Request], bool]
    action: str
    every: int = 1
    times: int | None = None
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    code: str = "InternalServerError"
    status: int = 500
    keep: int = 0
    seen: int = 0
    applied: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def applies(self, request: Request) -> bool:
        if not self.match(request):
            return False
        self.seen += 1
        if self.seen % self.every or (self.times is not None and self.applied >= self.times):
            return False
        self.applied += 1
        return True


@dataclass
class RateLimit:
    """A token bucket the `operations` share (`ssm.PutParameter` alone; SSM's reads together),
    refilled at `per_second` up to `burst` (one second's worth unless said). A request finding it
    empty is throttled as SSM throttles; `passed` and `throttled` count them by operation, and
    `events` keeps when, for shares after a warm-up."""

    operations: frozenset[str]
    per_second: float
    burst: float | None = None
    passed: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    events: list[tuple[float, str, bool]] = field(default_factory=list)
    _tokens: float = -1.0
    _stamp: float = 0.0

    def admit(self, operation: str) -> bool:
        now = time.monotonic()
        capacity = self.burst if self.burst is not None else self.per_second
        if self._tokens < 0:
            self._tokens, self._stamp = capacity, now
        self._tokens = min(capacity, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now
        admitted = self._tokens >= 1
        if admitted:
            self._tokens -= 1
        (self.passed if admitted else self.throttled)[operation] += 1
        self.events.append((now, operation, admitted))
        return admitted

    def throttled_share(self, operation: str, after: float = 0.0) -> float:
        """The share of `operation`'s requests throttled, `after` seconds past its first one."""
        times = [(t, ok) for t, op, ok in self.events if op == operation]
        if not times:
            return 0.0
        late = [ok for t, ok in times if t >= times[0][0] + after]
        return sum(not ok for ok in late) / len(late) if late else 0.0


SPLIT_TOKEN = "tf-release-test-split-"


class FaultProxy:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[Rule] = []
        self.limits: list[RateLimit] = []
        self.lock = threading.Lock()
        self._split_pages: dict[str, tuple[list[Any], str | None]] = {}
        self._split_numbers = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def limit(
        self, operations: Iterable[str], per_second: float, burst: float | None = None
    ) -> RateLimit:
        """Throttle `operations` (together) above `per_second`, as SSM does."""
        limit = RateLimit(frozenset(operations), per_second, burst)
        with self.lock:
            self.limits.append(limit)
        return limit

    def clear(self) -> None:
        with self.lock:
            for rule in self.rules:
                rule.released.set()
            self.rules.clear()
            self.limits.clear()

    def stop(self) -> None:
        self.clear()
        self.server.shutdown()
        self.server.server_close()

    def _rule_for(self, request: Request) -> Rule | None:
        with self.lock:
            return next((rule for rule in self.rules if rule.applies(request)), None)

    def _admitted(self, request: Request) -> bool:
        operation = request.operation
        with self.lock:
            return all(
                limit.admit(operation) for limit in self.limits if operation in limit.operations
            )

    def _split(self, keep: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """Cut a page to its first `keep` parameters; the rest wait under a NextToken of ours."""

        def cut(page: dict[str, Any]) -> dict[str, Any]:
            parameters = page.get("Parameters", [])
            token = f"{SPLIT_TOKEN}{next(self._split_numbers)}"
            with self.lock:
                self._split_pages[token] = (parameters[keep:], page.get("NextToken"))
            return {**page, "Parameters": parameters[:keep], "NextToken": token}

        return cut

    def _rest_of_page(self, request: Request) -> dict[str, Any] | None:
        """The rest of a page we cut, when the request carries our NextToken."""
        try:
            token = json.loads(request.body).get("NextToken")
        except (ValueError, AttributeError):
            return None
        if not isinstance(token, str) or not token.startswith(SPLIT_TOKEN):
            return None
        with self.lock:
            parameters, upstream_token = self._split_pages.pop(token)
        page: dict[str, Any] = {"Parameters": parameters}
        if upstream_token:
            page["NextToken"] = upstream_token
        return page

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(self.command, self.path, headers, body)
                if not proxy._admitted(request):
                    self._answer(request, "ThrottlingException", 400, "Rate exceeded")
                    return
                rest = proxy._rest_of_page(request)
                if rest is not None:
                    self._json(rest)
                    return
                rule = proxy._rule_for(request)
                if rule is not None and rule.action in ("rewrite", "short-page"):
                    cut = proxy._split(rule.keep) if rule.action == "short-page" else None
                    self._forward(request, cut or rule.rewrite)
                    return
                if rule is not None:
                    if rule.action == "hold":
                        rule.reached.set()
                        rule.released.wait(timeout=300)
                    if rule.action in ("hold", "reset"):
                        self.close_connection = True
                        self.connection.close()
                    elif rule.action == "fail":
                        self._answer(request, rule.code, rule.status)
                    elif rule.action == "html":
                        self._page(rule.status)
                    else:
                        self._fault(request, rule.action)
                    return
                self._forward(request)

            def _fault(self, request: Request, action: str) -> None:
                """A throttle or a 500 as the service would send it."""
                json_protocol = bool(request.headers.get("x-amz-target"))
                if action == "throttle":
                    if json_protocol:
                        self._answer(request, "ThrottlingException", 400)
                    elif request.operation.startswith("sts."):
                        self._answer(request, "Throttling", 400)
                    else:
                        self._answer(request, "SlowDown", 503)
                elif json_protocol:
                    self._answer(request, "InternalServerError", 500)
                elif request.operation.startswith("sts."):
                    self._answer(request, "InternalFailure", 500)
                else:
                    self._answer(request, "InternalError", 500)

            def _answer(
                self, request: Request, code: str, status: int, message: str = "injected"
            ) -> None:
                """An error as the service would send it: JSON for the JSON protocol (SSM, ECS),
                XML for S3 and the query protocol (STS)."""
                if request.headers.get("x-amz-target"):
                    body = json.dumps({"__type": code, "message": message}).encode()
                    kind = "application/x-amz-json-1.1"
                elif request.operation.startswith("sts."):
                    body = (
                        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                        f"<Message>{message}</Message></Error></ErrorResponse>"
                    ).encode()
                    kind = "text/xml"
                else:
                    xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                    body = xml.encode()
                    kind = "application/xml"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if request.method != "HEAD":
                    self.wfile.write(body)

            def _page(self, status: int) -> None:
                """What a load balancer or proxy in the way answers: a whole HTML page."""
                body = (
                    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
                    "<body><center><h1>502 Bad Gateway</h1></center>\n<hr>"
                    "<center>nginx</center>\n</body></html>\n" + "<!-- padding -->\n" * 20
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(
                self,
                request: Request,
                rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
            ) -> None:
                upstream = http.client.HTTPConnection(*proxy.target, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(request.method, request.path, body=request.body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                if rewrite is not None and response.status == 200:
                    data = json.dumps(rewrite(json.loads(data))).encode()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if request.method != "HEAD":
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        return Handler
