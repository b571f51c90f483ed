"""`idauth-exporter demo` as a process, for the Python tests that read what it serves (the
feed tests in tests/python, the status page in tests/browser): started on a free loopback
port, its output kept in a file so that a long run never blocks on a full pipe, and stopped
at the end.
"""

import contextlib
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("IDAUTH_BIN", ROOT / "target" / "debug" / "idauth-exporter"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_demo(ready_within=30):
    """Yields the demo's base URL (`http://127.0.0.1:PORT/`) once it is ready; fails the
    test, with the demo's output, when it is not within `ready_within` seconds."""
    if not BIN.exists():
        pytest.fail(f"the idauth-exporter binary is needed ({BIN}; cargo build)")
    port = free_port()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [str(BIN), "demo", f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + ready_within
        try:
            while True:
                try:
                    urllib.request.urlopen(url + "-/ready", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        out.seek(0)
                        pytest.fail(f"the demo did not become ready: {out.read().decode(errors='replace')}")
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
