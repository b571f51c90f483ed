"""Webhooks against the real binary, checked by the Standard Webhooks reference library.

The provider is `idauth-exporter simulate` at 300x (a 10-minute window every 2 s)
playing a scenario written for each test: NG BVN online for four windows from the test's
start (8 s), then offline for 100 minutes of real time. Each exporter polls it once a
window (`1/2 * * * * *`, a second into each window), learns "online" first (no change),
then sees exactly one change, to offline, about 10 s in. The receiver is Python's
http.server in a thread; it verifies every request with `standardwebhooks` and keeps
the ids it has processed, as the specification asks receivers to.

  a. the request verifies; a tampered body does not; the body is the documented one,
     rates as ratios;
  b. a delivery that failed while the receiver was down survives kill -9 of the
     exporter and arrives, same webhook-id, after a restart on the same store;
  c. two replicas (own stores, same config, same provider) send the same change under
     the same webhook-id: the receiver gets it twice and processes it once.
"""

import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import start_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("IDAUTH_BIN", ROOT / "target" / "debug" / "idauth-exporter"))
SIM_KEY = "sk_webhooks_5d1c0a"
SPEED = 300  # a 10-minute window every 2 s of real time
WINDOW = 600 / SPEED  # real seconds per window
ONLINE_WINDOWS = 4
PATIENCE = 30.0  # seconds; every wait polls every 0.2 s and ends as soon as it can


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(what, check, timeout=PATIENCE, log=None):
    """Polls `check` every 0.2 s until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            tail = f"\n--- exporter log ---\n{log.read_text()[-4000:]}" if log else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{tail}")
        time.sleep(0.2)


def iso(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Scenario:
    """NG BVN at 97% for ONLINE_WINDOWS windows starting with the one the simulator reports
    now, then at 10% for 300 windows (10 real minutes at 300x): one change to offline."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "scenario.yaml"
        total = (ONLINE_WINDOWS + 300) * 600  # the timeline's length, simulated seconds
        # The simulator reports the last complete window: w = floor(now * speed / 600) - 1.
        first = int(time.time() * SPEED // 600) - 1
        offset = (-first * 600) % total  # window `first` is at the timeline's start
        # The change is seen in window first + ONLINE_WINDOWS; last_checked is its end.
        self.since = (first + ONLINE_WINDOWS + 1) * WINDOW
        self.path.write_text(
            "pairs:\n"
            "  - country: NG\n"
            "    id_types: [BVN]\n"
            f"    offset: {offset}s\n"
            "    timeline:\n"
            f"      - {{for: {ONLINE_WINDOWS * 10}m, success_rate: 0.97}}\n"
            "      - {for: 3000m, success_rate: 0.1}\n"
        )


class Receiver:
    """A webhook receiver: verifies each request with standardwebhooks, answers 204 (401 when
    the signature does not verify), and processes each webhook-id once."""

    def __init__(self, secret, port):
        self.webhook = Webhook(secret)
        self.requests = []  # (headers, body, verified) of every request, in order
        self.processed = []  # the events acted on: one per webhook-id
        self.seen = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = receiver.webhook.verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    event, verified = None, False
                with receiver.lock:
                    receiver.requests.append((headers, body, verified))
                    if verified and headers["webhook-id"] not in receiver.seen:
                        receiver.seen.add(headers["webhook-id"])
                        receiver.processed.append(event)
                self.send_response(204 if verified else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def got(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Exporter:
    def __init__(self, proc, port, log):
        self.proc, self.port, self.log = proc, port, log

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        """The value of one series on /metrics, or None (also while not answering)."""
        try:
            text = self.get("/metrics")
        except OSError:
            return None
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        series = f"{name}{{{want}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return None

    def ready(self):
        if self.proc.poll() is not None:
            pytest.fail(f"the exporter exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
        try:
            return self.get("/-/ready") is not None
        except OSError:
            return False


@pytest.fixture
def world(tmp_path):
    """Starts processes and receivers for one test; ends them all afterwards."""
    procs, receivers = [], []

    class World:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        scenario = Scenario(tmp_path)

        def simulator(self):
            proc, url = start_simulator(self.scenario.path, SIM_KEY, f"--speed={SPEED}")
            procs.append(proc)
            return url

        def config(self, simulator, hook_port, name="resubmitter"):
            secret_file = tmp_path / "webhook-secret"
            secret_file.write_text(self.secret + "\n")
            path = tmp_path / "config.yaml"
            # Mirrors demo::exporter_config for a 2 s window: a poll a second into each
            # window, stale after three; two attempts of 1 s fit the period.
            path.write_text(
                "smile_id:\n"
                '  partner_id: "085"\n'
                "  api_key_env: SIM_KEY\n"
                "  api: v2\n"
                f"  base_url: {simulator}\n"
                "poll:\n"
                '  schedule: "1/2 * * * * *"\n'
                "  timeout: 1s\n"
                "  retries: 1\n"
                "  jitter: 0s\n"
                "  max_data_age: 7s\n"
                "targets:\n"
                "  - country: NG\n"
                "    id_types: [BVN]\n"
                "notify:\n"
                "  webhooks:\n"
                f"    - name: {name}\n"
                f"      url: http://127.0.0.1:{hook_port}/hooks\n"
                f"      secret_file: {secret_file}\n"
            )
            return path

        def exporter(self, config, storage, log_name):
            port = free_port()
            log = tmp_path / log_name
            proc = subprocess.Popen(
                [
                    str(BIN),
                    f"--config.file={config}",
                    f"--storage.path={tmp_path / storage}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                env={**os.environ, "SIM_KEY": SIM_KEY},
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            ex = Exporter(proc, port, log)
            eventually(f"the exporter on :{port} to be ready", ex.ready, log=log)
            return ex

        def receiver(self, port):
            r = Receiver(self.secret, port)
            receivers.append(r)
            return r

    if not BIN.exists():
        pytest.fail(f"the idauth-exporter binary is needed ({BIN}; cargo build)")
    yield World()
    for r in receivers:
        r.close()
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_a_change_arrives_signed_as_standard_webhooks_verifies(world):
    sim = world.simulator()
    hook_port = free_port()
    receiver = world.receiver(hook_port)
    ex = world.exporter(world.config(sim, hook_port), "store", "exporter.log")
    got = eventually("the change's delivery", receiver.got, log=ex.log)
    assert len(got) == 1, got
    headers, body, verified = got[0]
    assert verified, "standardwebhooks verifies the request"
    assert re.fullmatch(r"msg_[0-9a-f]{32}", headers["webhook-id"]), headers
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60

    # The check is real: the same headers with one byte of the body changed do not verify,
    # nor does the right body under another secret.
    tampered = body.replace(b'"offline"', b'"online"', 1)
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(world.secret).verify(tampered, headers)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    assert Webhook(world.secret).verify(body, headers) == json.loads(body)

    event = json.loads(body)
    assert set(event) == {"type", "timestamp", "data"}
    assert event["type"] == "authority.state_changed"
    data = event["data"]
    assert set(data) == {"country", "id_type", "from", "to", "since", "rate_10m", "rate_1h", "last_checked"}
    assert (data["country"], data["id_type"], data["from"], data["to"]) == ("NG", "BVN", "online", "offline")
    # "since" is the provider's last_checked of the first offline window; the event's
    # timestamp is that moment too (the same on every replica).
    since = iso(world.scenario.since)
    assert data["since"] == data["last_checked"] == event["timestamp"] == since, (data, since)
    # Ratios, not percents: the provider's "10%" and the mean of six windows, four at 97%
    # and two at 10% ("68%").
    assert data["rate_10m"] == 0.1
    assert data["rate_1h"] == 0.68
    for rate in (data["rate_10m"], data["rate_1h"]):
        assert isinstance(rate, float) and 0.0 <= rate <= 1.0

    # The exporter counts it delivered, and nothing waits.
    eventually("the delivery to be counted", lambda: ex.metric(
        "idauth_webhook_deliveries_total", result="success", webhook="resubmitter") == 1, log=ex.log)
    assert ex.metric("idauth_webhook_pending", webhook="resubmitter") == 0


def test_a_delivery_pending_at_kill_9_arrives_after_the_restart(world):
    sim = world.simulator()
    # Held bound but not listening: a connection is refused, and no one else takes the port.
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    hook_port = placeholder.getsockname()[1]
    config = world.config(sim, hook_port)
    ex = world.exporter(config, "store", "exporter-1.log")

    def failed_once():
        unreachable = ex.metric("idauth_webhook_deliveries_total", result="unreachable", webhook="resubmitter")
        pending = ex.metric("idauth_webhook_pending", webhook="resubmitter")
        return (unreachable or 0) >= 1 and pending == 1 and unreachable

    unreachable = eventually("a failed first attempt", failed_once, log=ex.log)
    ex.proc.kill()  # SIGKILL: no shutdown, nothing flushed on the way out
    ex.proc.wait()
    # The second attempt comes 5 minutes after the second failure: killed before it.
    assert unreachable == 1, "killed within the 5 s before the second attempt"
    failures = re.findall(r'message="webhook delivery failed" webhook=resubmitter id=(msg_[0-9a-f]{32})',
                          ex.log.read_text())
    assert len(set(failures)) == 1, failures
    first_id = failures[0]

    placeholder.close()
    receiver = world.receiver(hook_port)
    assert receiver.got() == [], "nothing arrives while no exporter runs"
    again = world.exporter(config, "store", "exporter-2.log")
    # The retry keeps its time (5 s after the first failure), so this takes a few seconds.
    got = eventually("the pending delivery after the restart", receiver.got, log=again.log)
    headers, body, verified = got[0]
    assert verified
    assert headers["webhook-id"] == first_id, "the same webhook-id as the attempt before the kill"
    event = json.loads(body)
    assert (event["data"]["from"], event["data"]["to"]) == ("online", "offline")
    assert event["data"]["since"] == iso(world.scenario.since)
    assert "taken up" in again.log.read_text(), "the restarted exporter took up the outbox"
    eventually("the delivery to be counted", lambda: again.metric(
        "idauth_webhook_deliveries_total", result="success", webhook="resubmitter") == 1, log=again.log)
    assert again.metric("idauth_webhook_pending", webhook="resubmitter") == 0
    # The restart learnt nothing new (the store kept the state, offline): two more polls
    # later, still one delivery in all.
    polls = again.metric("idauth_polls_total", country="NG", id_type="BVN") or 0
    eventually("two more polls", lambda: (again.metric(
        "idauth_polls_total", country="NG", id_type="BVN") or 0) >= polls + 2, log=again.log)
    assert len(receiver.got()) == 1, [h["webhook-id"] for h, _, _ in receiver.got()]


def test_two_replicas_send_the_same_webhook_id_and_a_receiver_processes_it_once(world):
    sim = world.simulator()
    hook_port = free_port()
    receiver = world.receiver(hook_port)
    config = world.config(sim, hook_port)
    a = world.exporter(config, "store-a", "replica-a.log")
    b = world.exporter(config, "store-b", "replica-b.log")

    def both_delivered():
        return all(
            ex.metric("idauth_webhook_deliveries_total", result="success", webhook="resubmitter") == 1
            for ex in (a, b)
        )

    eventually("each replica to deliver the change once", both_delivered, log=b.log)
    got = receiver.got()
    assert len(got) == 2, [h["webhook-id"] for h, _, _ in got]
    assert all(verified for _, _, verified in got)
    ids = {h["webhook-id"] for h, _, _ in got}
    assert len(ids) == 1, f"one change, one id across replicas: {ids}"
    # Both replicas saw the same provider windows, so they sent the same bytes.
    assert got[0][1] == got[1][1]
    # A receiver deduplicating by webhook-id, as the specification intends, acts once.
    assert len(receiver.processed) == 1
    assert receiver.processed[0]["data"]["to"] == "offline"
    assert receiver.processed[0]["data"]["since"] == iso(world.scenario.since)
