"""A fault-injecting HTTP proxy in front of the moto server, on 127.0.0.1.

The tool under test talks to it as its AWS endpoint. Each request is matched against rules that
can throttle it, fail it with a 500, drop the connection, hold it until the test lets go (so
a test can kill the tool at an exact step), or rewrite the JSON the service answers (so a test
can show the tool a state moto cannot reach). Everything else is passed through unchanged.
"""

import contextlib
import http.client
import json
import threading
from collections.abc import Callable
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
    """What to do with the requests `match` picks: 'throttle', 'error', 'reset', 'hold' (keep
    the request until the test lets go, then drop it unanswered: it never reaches AWS) or
    'rewrite' (pass it on, and answer with `rewrite` applied to the JSON of a 200 response).

    `every` applies the fault to every n-th matching request only; `times` stops after that many.
    """

    match: Callable[[Request], bool]
    action: str
    every: int = 1
    times: int | None = None
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
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


class FaultProxy:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[Rule] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            for rule in self.rules:
                rule.released.set()
            self.rules.clear()

    def stop(self) -> None:
        self.clear()
        self.server.shutdown()
        self.server.server_close()

    def _rule_for(self, request: Request) -> Rule | None:
        with self.lock:
            return next((rule for rule in self.rules if rule.applies(request)), None)

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
                rule = proxy._rule_for(request)
                if rule is not None and rule.action == "rewrite":
                    self._forward(request, rule.rewrite)
                    return
                if rule is not None:
                    if rule.action == "hold":
                        rule.reached.set()
                        rule.released.wait(timeout=300)
                    if rule.action in ("hold", "reset"):
                        self.close_connection = True
                        self.connection.close()
                    else:
                        self._fault(request, rule.action)
                    return
                self._forward(request)

            def _fault(self, request: Request, action: str) -> None:
                """An error as the service would send it: JSON for the JSON protocol (SSM, ECS),
                XML for S3 and the query protocol (STS)."""
                throttle = action == "throttle"
                if request.headers.get("x-amz-target"):
                    code = "ThrottlingException" if throttle else "InternalServerError"
                    body = json.dumps({"__type": code, "message": "injected"}).encode()
                    kind = "application/x-amz-json-1.1"
                elif request.operation.startswith("sts."):
                    code = "Throttling" if throttle else "InternalFailure"
                    body = (
                        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                        "<Message>injected</Message></Error></ErrorResponse>"
                    ).encode()
                    kind = "text/xml"
                else:
                    code = "SlowDown" if throttle else "InternalError"
                    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
                    kind = "application/xml"
                status = 500 if not throttle else 503 if code == "SlowDown" else 400
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if request.method != "HEAD":
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
