"""The demo's notification endpoint (the watch floor and the incident manager): a webhook
receiver on loopback that checks the signature, files each message as JSON under a folder
named for its event (``dco.deconfliction``, ``dco.incident`` …), and acknowledges it — so the
demo's deconfliction notices and escalations cross a real HTTP boundary through the same
connector a cell would use."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dcoflow.connectors.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def safe_name(text: str, fallback: str) -> str:
    """A header or field made into one file name: no separators, no leading dot, no '..', bounded."""
    name = re.sub(r"[^A-Za-z0-9_.:-]+", "_", text)[:120].lstrip(".")
    return name if name and ".." not in name else (fallback if not text else
                                                    "k-" + hashlib.sha256(text.encode()).hexdigest()[:16])


@contextmanager
def notification_inbox(folder: Path, secret: str) -> Iterator[str]:
    """Serve on 127.0.0.1 (free port) while the block runs; yields the webhook URL."""
    folder.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signature = self.headers.get(SIGNATURE_HEADER, "")
            timestamp = self.headers.get(TIMESTAMP_HEADER, "")
            if not verify(secret, timestamp, body, signature):
                self._answer(401, {"error": "bad signature"})
                return
            try:
                message = json.loads(body)
            except ValueError:
                self._answer(400, {"error": "not JSON"})
                return
            if not isinstance(message, dict):
                self._answer(400, {"error": "not a JSON object"})
                return
            key = safe_name(self.headers.get("Idempotency-Key", ""), "unkeyed")
            event = safe_name(str(message.get("event") or ""), "unknown")
            (folder / event).mkdir(exist_ok=True)
            (folder / event / f"{key}.json").write_bytes(body)
            self._answer(200, {"id": f"IM-{key[-8:]}", "status": "acknowledged",
                               "event": message.get("event")})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/incidents"
    finally:
        server.shutdown()
        server.server_close()
