"""A tiny webhook receiver for docker-compose.yml: prints every POSTed chain as one line.

Standard library only, so it runs on the stock Python image. It answers 204 to every
POST and prints the JSON body (or a note when the body is not JSON) and the request's
signature header, if any, so a user can see what a real webhook consumer would get.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 4 << 20


class Handler(BaseHTTPRequestHandler):
    """POST anything → 204 and one printed line; GET /healthz → 200."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        self.send_response(204)
        self.end_headers()
        print(_describe(self.path, body, self.headers.get("X-Signature", "")), flush=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silence the default access log; the printed chains are the output."""


def _describe(path: str, body: bytes, signature: str) -> str:
    try:
        record = json.loads(body)
    except ValueError:
        return json.dumps({"path": path, "error": "body is not JSON", "bytes": len(body)})
    return json.dumps({"path": path, "signature": signature, "record": record})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    host, _, port = parser.parse_args().listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"webhook receiver on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
