"""The changes of state as other programs read them: the demo's exporter, whose simulated
authorities change state within seconds, serves /api/v1/events and /feed.atom; the feed
is read by feedparser (what feed readers and chat tools use), the events API by plain HTTP,
resumed from a cursor as a client that keeps up would.
"""

import json
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import feedparser
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import running_demo  # noqa: E402

# The demo's scenario changes GH GHANA_CARD every 10 seconds and NG NIN_V2 at 1m30s: a
# change comes within seconds; 90 s leaves room for a slow machine.
WAIT = 90



@pytest.fixture(scope="module")
def demo():
    with running_demo() as url:
        yield url


def get(url):
    """(status, headers, body) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def events(demo, query=""):
    status, headers, body = get(f"{demo}api/v1/events{query}")
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    return json.loads(body)


def wait_for_events(demo, n):
    deadline = time.monotonic() + WAIT
    while True:
        page = events(demo, "?limit=1000")
        if len(page["events"]) >= n:
            return page["events"]
        if time.monotonic() > deadline:
            pytest.fail(f"the demo recorded {len(page['events'])} changes of state in {WAIT} s, fewer than {n}")
        time.sleep(1)


def uuid_of(event_id):
    """The UUID (version 8) of an event's id, as the feed's entry ids carry it."""
    assert re.fullmatch(r"msg_[0-9a-f]{32}", event_id), event_id
    b = bytearray(bytes.fromhex(event_id.removeprefix("msg_")))
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def test_events_are_changes_of_state_newest_first(demo):
    listed = wait_for_events(demo, 1)
    seqs = [e["seq"] for e in listed]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs), seqs
    for e in listed:
        assert list(e) == [
            "seq", "id", "country", "id_type", "from", "to", "since", "detected", "rate_10m", "rate_1h", "last_checked",
        ], e
        assert e["from"] != e["to"] and {e["from"], e["to"]} <= {"online", "interruption", "offline"}, e
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["detected"]), e
        assert e["since"] <= e["detected"], e


def test_the_atom_feed_reads_in_feedparser(demo):
    wait_for_events(demo, 1)
    # The feed and the events agree when no change came in between the two reads.
    for _ in range(10):
        before = events(demo, "?limit=50")["events"]
        status, headers, _ = get(demo + "feed.atom")
        d = feedparser.parse(demo + "feed.atom")
        after = events(demo, "?limit=50")["events"]
        if before == after:
            break
    else:
        pytest.fail("the events kept changing while the feed was read")
    assert status == 200
    assert headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert not d.bozo, d.get("bozo_exception")
    assert d.version == "atom10"
    assert d.feed.title == "ID authority changes"
    assert d.feed.id.startswith("urn:uuid:")
    links = {link.rel: link.href for link in d.feed.links}
    assert links == {"self": demo + "feed.atom", "alternate": demo}, links
    assert d.feed.updated == after[0]["detected"]

    assert len(d.entries) == len(after) > 0
    for entry, event in zip(d.entries, after):
        assert entry.id == "urn:uuid:" + uuid_of(event["id"]), (entry.id, event)
        assert entry.title.startswith(f"{event['country']} {event['id_type']} "), entry.title
        assert entry.link == f"{demo}#{event['country']}-{event['id_type']}"
        assert entry.updated == entry.published == event["detected"]
        assert entry.updated_parsed is not None
        assert f"since {event['since'][:10]} " in entry.summary, entry.summary
        assert "over the last 10 minutes" in entry.summary
    first, newest = d.entries[0], after[0]
    assert first.id == f"urn:uuid:{uuid_of(newest['id'])}"
    word = {"online": "is back online", "offline": "is offline", "interruption": "has an interruption"}[newest["to"]]
    assert word in first.title, first.title


def test_after_resumes_without_gaps(demo):
    wait_for_events(demo, 3)
    everything = events(demo, "?limit=1000")
    assert not everything["more"]
    known = [e["seq"] for e in reversed(everything["events"])]  # oldest first
    # A client that has seen nothing reads one at a time, as one that keeps up would.
    cursor, read = 0, []
    while True:
        page = events(demo, f"?after={cursor}&limit=1")
        assert len(page["events"]) <= 1
        if not page["events"]:
            assert not page["more"]
            break
        e = page["events"][0]
        assert e["seq"] > cursor
        read.append(e["seq"])
        cursor = e["seq"]
        if not page["more"]:
            break
    # Changes that came in meanwhile follow; nothing known was skipped or repeated.
    assert read[: len(known)] == known, (read, known)
    assert read == sorted(set(read))
    # Two at a time from the middle: the two that follow the cursor, newest first.
    if len(known) >= 3:
        page = events(demo, f"?after={known[0]}&limit=2")
        assert [e["seq"] for e in page["events"]] == [known[2], known[1]]
        # More follow when a fourth was known (with exactly three, one may have come since).
        if len(known) >= 4:
            assert page["more"]
        # Back from the newest with before=.
        page = events(demo, f"?before={known[2]}&limit=1")
        assert [e["seq"] for e in page["events"]] == [known[1]] and page["more"]


@pytest.mark.parametrize(
    "query,named",
    [("after=x", "after"), ("before=1.5", "before"), ("limit=0", "limit"), ("limit=100000", "limit")],
)
def test_a_bad_parameter_is_a_400_that_names_it(demo, query, named):
    status, headers, body = get(f"{demo}api/v1/events?{query}")
    assert status == 400
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body.startswith(f"{named} must be"), body


def test_badges(demo):
    status, headers, svg = get(demo + "badge/NG/NIN_V2.svg")
    assert status == 200
    assert headers["content-type"] == "image/svg+xml"
    assert headers["cache-control"] == "public, max-age=60"
    assert re.search(r"<title>NG NIN_V2: (online|offline|interruption), \d+(\.\d)?% uptime over 7 days</title>", svg), svg
    status, _, svg = get(demo + "badge/NG/NOT_WATCHED.svg")
    assert status == 404 and ">not watched</text>" in svg
