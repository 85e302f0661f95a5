"""The downtime probes' poller: a stdlib script that tdi runs with python3 in a probe
container on an upgrade side's network (phases/probes.py), never inside a test host.

``python3 -c SCRIPT OUT TARGETS``: TARGETS is a JSON list of probes, each
``{"scheme", "name", "address", "port", "path", "every"}``. One thread a probe polls it
every ``every`` seconds, each poll on a new connection, and appends a JSON line to OUT:
``[probe index, start (seconds since the epoch), ok, why]``. An HTTP poll is ok when the
answer's status is below 400; a TCP poll when the connection opens.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import sys
import threading
import time
from typing import Any

TIMEOUT = 2.0  # seconds one poll may take: then it failed


def poll(target: dict[str, Any]) -> str:
    """One poll of ``target``: "" when it answered, else why not, in a few words."""
    try:
        with socket.create_connection((target["address"], target["port"]), TIMEOUT) as sock:
            return "" if target["scheme"] == "tcp" else _get(target, sock)
    except (OSError, http.client.HTTPException) as exc:
        return str(exc) or type(exc).__name__


def _get(target: dict[str, Any], sock: socket.socket) -> str:
    """GET the target's path on a connected socket, with its host name as Host (and SNI)."""
    name, port = target["name"], int(target["port"])
    conn: http.client.HTTPConnection
    if target["scheme"] == "https":
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection(name, port, timeout=TIMEOUT, context=context)
        conn.sock = context.wrap_socket(sock, server_hostname=name)
    else:
        conn = http.client.HTTPConnection(name, port, timeout=TIMEOUT)
        conn.sock = sock  # connected to the address tdi found: no name lookup a poll
    try:
        conn.request("GET", target["path"], headers={"User-Agent": "tdi-probe"})
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()
    return "" if answer.status < 400 else f"HTTP {answer.status} {answer.reason}"


def main(out: str, targets: list[dict[str, Any]]) -> None:
    lock = threading.Lock()
    with open(out, "a", encoding="utf-8") as sink:

        def watch(index: int, target: dict[str, Any]) -> None:
            due = time.time()
            while True:
                start = time.time()
                why = poll(target)
                with lock:
                    sink.write(json.dumps([index, round(start, 3), not why, why]) + "\n")
                    sink.flush()
                due = max(due + float(target["every"]), time.time())
                time.sleep(max(0.0, due - time.time()))

        threads = [
            threading.Thread(target=watch, args=(i, t), daemon=True) for i, t in enumerate(targets)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
