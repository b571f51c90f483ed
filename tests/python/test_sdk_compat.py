"""The simulator against Smile ID's own Python packages, independent clients of the API.

smile-id-core signs v2 requests; usesmileid (the v3 SDK) fetches a token and reads
id_status. Both must find the simulator indistinguishable from the provider.
"""

import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import usesmileid
from smile_id_core.Signature import Signature

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import start_simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk_python_compat_3b8e1f"
PARTNER = "085"


@pytest.fixture(scope="module")
def simulator():
    proc, url = start_simulator(ROOT / "tests" / "python" / "scenario.yaml", KEY, f"--partner-id={PARTNER}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def v2_body(signature, timestamp, country="NG", id_type="BVN"):
    return {
        "partner_id": PARTNER,
        "timestamp": timestamp,
        "signature": signature,
        "country": country,
        "id_type": id_type,
        "environment": "production",
    }


@pytest.mark.parametrize(
    "timestamp",
    [
        None,  # the SDK's own default: isoformat(), microseconds and +00:00
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    ],
)
def test_a_smile_id_core_signature_is_accepted(simulator, timestamp):
    signed = Signature(PARTNER, KEY).generate_signature(timestamp)
    r = httpx.post(
        f"{simulator}/api/v2/partner/id_status",
        json=v2_body(signed["signature"], signed["timestamp"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["last_known_status"] == "online"
    assert body["last_check_success_rate"] == "97%"
    assert body["last_hour_success_rate"] == "97%"
    assert body["last_checked"].endswith("Z")


def test_a_tampered_signature_is_rejected_with_2205(simulator):
    signed = Signature(PARTNER, KEY).generate_signature()
    sig = signed["signature"]
    tampered = ("A" if sig[0] != "A" else "B") + sig[1:]
    r = httpx.post(
        f"{simulator}/api/v2/partner/id_status",
        json=v2_body(tampered, signed["timestamp"]),
    )
    assert r.status_code == 401
    assert r.json() == {"error": "You are not authorized to do that.", "code": "2205"}


def test_a_signature_by_another_key_is_rejected(simulator):
    signed = Signature(PARTNER, "not-the-key").generate_signature()
    r = httpx.post(
        f"{simulator}/api/v2/partner/id_status",
        json=v2_body(signed["signature"], signed["timestamp"]),
    )
    assert r.json()["code"] == "2205"


class ToSimulator(httpx.BaseTransport):
    """Sends the SDK's https requests to the simulator, recording their paths."""

    def __init__(self, base):
        self.target = httpx.URL(base)
        self.inner = httpx.HTTPTransport()
        self.paths = []

    def handle_request(self, request):
        self.paths.append(request.url.path)
        request.url = request.url.copy_with(
            scheme=self.target.scheme, host=self.target.host, port=self.target.port
        )
        return self.inner.handle_request(request)


def sdk_client(simulator, api_key=KEY):
    transport = ToSimulator(simulator)
    client = usesmileid.Client(
        partner_id=PARTNER.lstrip("0"),
        api_key=api_key,
        environment="production",
        max_retries=0,
        http_client=httpx.Client(transport=transport),
    )
    return client, transport


def test_usesmileid_reads_the_scenario_values(simulator):
    client, transport = sdk_client(simulator)
    with client:
        ng = client.services.id_status(country="NG", id_type="BVN")
        za = client.services.id_status(country="ZA", id_type="NATIONAL_ID")
    assert (ng.last_known_status, ng.last_check_success_rate, ng.last_hour_success_rate) == (
        "online",
        "97%",
        "97%",
    )
    assert ng.last_check_status == "success"
    assert (za.last_known_status, za.last_check_success_rate) == ("offline", "30%")
    assert za.last_check_status == "failure"
    # One token for both calls.
    assert transport.paths.count("/v3/token") == 1, transport.paths


def test_usesmileid_sees_the_documented_errors(simulator):
    client, _ = sdk_client(simulator)
    with client, pytest.raises(usesmileid.errors.SmileIDError) as info:
        client.services.id_status(country="NG", id_type="V_NIN")
    assert "No data found" in str(info.value)

    client, _ = sdk_client(simulator, api_key="wrong")
    with client, pytest.raises(usesmileid.errors.AuthenticationError):
        client.services.id_status(country="NG", id_type="BVN")
