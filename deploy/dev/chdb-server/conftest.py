"""Starts chdb_http_server.py on a free port with its own data directory."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class ServerProcess:
    def __init__(self, data_dir: Path, log_path: Path):
        self.data_dir = data_dir
        self.log_path = log_path
        self.pid_file = data_dir.parent / f"{data_dir.name}.pid"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        self._log = open(self.log_path, "ab")
        offset = self.log_path.stat().st_size
        env = dict(os.environ)
        if "PYTHONPYCACHEPREFIX" not in env:
            env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the source tree clean
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "chdb_http_server.py"), "--port", "0",
             "--data-dir", str(self.data_dir), "--pid-file", str(self.pid_file)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s; see {self.log_path}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return Response(res.status, res.headers, res.read())
        finally:
            conn.close()

    def query(self, sql: str, **params: str) -> Response:
        """POSTs sql as the body; params go in the URL."""
        from urllib.parse import urlencode

        path = "/" + (("?" + urlencode(params)) if params else "")
        return self.request("POST", path, sql.encode())

    def ok(self, sql: str, **params: str) -> str:
        res = self.query(sql, **params)
        assert res.status == 200, res.text
        return res.text


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> ServerProcess:
    base = tmp_path_factory.mktemp("chdb-server")
    srv = ServerProcess(base / "data", base / "server.log")
    srv.start()
    yield srv
    assert srv.stop() == 0, f"server did not stop cleanly; see {srv.log_path}"
