"""moto's server, answering one request at a time.

Real S3 makes a conditional put (`If-None-Match: *`, `If-Match`) atomic; moto checks and then
writes, so two threads can both pass the check. Serialising requests gives the tests S3's
guarantee; everything else is moto's own server (`moto_server`) unchanged.
"""

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class Serialised:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


def main() -> None:
    port = int(sys.argv[1])
    app = Serialised(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
