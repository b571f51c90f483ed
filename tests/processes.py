"""The binary's processes for the Python tests: `idauth-exporter demo` (the feed tests in
tests/python, the status page in tests/browser), started on a free loopback port, its output
kept in a file so that a long run never blocks on a full pipe, and stopped at the end; and
`idauth-exporter simulate` on a port of its choosing (the SDK and webhook tests).
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


def start_simulator(scenario, key, *flags):
    """Starts the simulator playing `scenario` and accepting `key`, with extra `flags`;
    returns the process and its base URL (from the line it prints once listening)."""
    proc = subprocess.Popen(
        [str(BIN), "simulate", "--listen=127.0.0.1:0", f"--scenario={scenario}", "--api-key-env=SIM_KEY", *flags],
        env={**os.environ, "SIM_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("simulator listening on http://"), line
    return proc, line.split(" on ", 1)[1]
