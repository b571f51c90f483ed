"""The status page in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven through WebDriver loads the demo's page and checks what a person
sees: the offline authority first with its since-text, 144 history cells per authority, an
update in place when a state changes, and no console errors (a Content-Security-Policy
violation is one); the links to the Atom feed and to each authority's badge, and the
badges drawn as images on the page. Screenshots are saved under target/ for a person to
look at.
"""

import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import free_port, running_demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "target"

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - reported as a failure below
    webdriver = None



def need(path, what):
    if not path or not Path(path).exists():
        pytest.fail(f"{what} is needed; ./scripts/test installs it (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def demo():
    with running_demo() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if webdriver is None:
        pytest.fail("selenium is needed; ./scripts/test installs tests/browser/requirements.txt")
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    need(chromium, "Chromium (Debian package chromium)")
    need(driver_path, "chromedriver (Debian package chromium-driver)")
    profile = tempfile.mkdtemp(prefix="idauth-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,1400",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # chromedriver on a loopback port of its own.
    service = Service(executable_path=driver_path, port=free_port(), service_args=["--allowed-ips=127.0.0.1"])
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def pairs(driver):
    """Every authority as shown, read in one go (the script replaces the list in place)."""
    return driver.execute_script(
        """const cells = (li, sel) => Array.from(li.querySelectorAll(sel)).reduce((n, c) => {
            // A stretch of n cells in one state is one element with class nN (n1 without).
            const w = Array.from(c.classList).find(k => /^n\\d+$/.test(k));
            return n + (w ? Number(w.slice(1)) : 1);
        }, 0);
        return Array.from(document.querySelectorAll('li.pair')).map(li => ({
            country: li.dataset.country, idType: li.dataset.idType, state: li.dataset.state,
            cells: cells(li, '.bar .cell'),
            online: cells(li, '.bar .cell.s-online'),
            unknown: cells(li, '.bar .cell.s-unknown'),
            title: (li.querySelector('.bar .cell') || {}).title,
            head: li.querySelector('.head').innerText}))"""
    )


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def states(driver):
    return [(p["country"], p["idType"], p["state"]) for p in pairs(driver)]


def test_the_status_page_in_chromium(demo, browser):
    browser.get(demo)
    assert "ID authority status" in browser.title
    # Links stay.
    hrefs = {a.get_attribute("href").removeprefix(demo.rstrip("/")) for a in browser.find_elements(By.CSS_SELECTOR, "nav a")}
    assert {"/metrics", "/api/v1/status", "/-/healthy", "/api/v1/events", "/feed.atom"} <= hrefs, hrefs
    feed = browser.find_element(By.CSS_SELECTOR, "nav a.feed")
    assert feed.text == "Atom feed" and feed.is_displayed()
    # Feed readers find the feed from the page.
    alternate = browser.execute_script(
        "const l = document.querySelector('head link[rel=alternate]'); return [l.type, l.getAttribute('href'), l.title]"
    )
    assert alternate == ["application/atom+xml", "/feed.atom", "ID authority changes (Atom)"], alternate
    # Each authority links to its badge, and has an anchor the feed's entries link to.
    badges = browser.execute_script(
        """return Array.from(document.querySelectorAll('li.pair')).map(li =>
            [li.id, li.dataset.country + '-' + li.dataset.idType, li.querySelector('a.badge').getAttribute('href'),
             '/badge/' + li.dataset.country + '/' + li.dataset.idType + '.svg'])"""
    )
    assert len(badges) == 27 and all(b[0] == b[1] and b[2] == b[3] for b in badges), badges

    # Every authority: 144 cells of 10 minutes, a day already there (the demo seeds it).
    shown = pairs(browser)
    assert len(shown) == 27
    for p in shown:
        assert p["cells"] == 144, p
        assert re.match(r"\d\d \w{3} \d\d:\d\d – \d\d:\d\d UTC: \w+", p["title"]), p["title"]
    assert sum(p["online"] for p in shown) > 27 * 100, "the day of history is filled"

    # The legend is read before the bars, above the first authority; each bar has a time
    # axis with now at the right; an authority that kept changing says so beside its state
    # (GH GHANA_CARD alternates in the demo's scenario: "Online" beside a bar of many
    # colours would read as a contradiction).
    legend_bottom = browser.execute_script("return document.querySelector('header .legend').getBoundingClientRect().bottom")
    first_top = browser.execute_script("return document.querySelector('li.pair').getBoundingClientRect().top")
    assert legend_bottom < first_top, (legend_bottom, first_top)
    axis = browser.execute_script("return Array.from(document.querySelector('li.pair .axis').children).map(s => s.innerText)")
    assert axis == ["24 h ago", "12 h", "now"], axis
    flapping = browser.execute_script(
        """return Array.from(document.querySelectorAll('li.pair')).filter(li => li.querySelector('.head .flapping'))
            .map(li => li.dataset.country + ' ' + li.dataset.idType + ': ' + li.querySelector('.flapping').innerText)"""
    )
    assert any(re.match(r"GH GHANA_CARD: flapping: \d+ changes in 24 h", f) for f in flapping), flapping
    # Steady: online wherever known (the seeded past ends a quarter of an hour before the
    # demo's start: those cells are unknown).
    steady = [p for p in shown if p["online"] + p["unknown"] == 144 and p["online"] > 130]
    assert steady and not any(f.startswith(f"{p['country']} {p['idType']}:") for p in steady for f in flapping), flapping

    # In the demo NG NIN_V2 is offline from the start for 90 s, then online 30 s, and again
    # (scenarios/default.yaml): wait for it, without reloading.
    browser.execute_script("window.__notReloaded = 42")
    first = wait_for("an offline authority listed first", lambda: states(browser)[0][2] == "offline" and states(browser), 75)
    assert first[0][:2] == ("NG", "NIN_V2"), first[:3]
    head = pairs(browser)[0]["head"]
    assert re.search(r"Offline\s+NG NIN_V2\s+since \d\d:\d\d UTC \(for (\d+ s|\d+ min|\d+ h( \d+ min)?)\)", head), head
    order = [s for _, _, s in first]
    rank = {"offline": 0, "unknown": 1, "interruption": 2, "online": 3}
    assert order == sorted(order, key=rank.get), order
    SHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SHOTS / "status-page.png"))

    # The state changes back (in place): the page updated itself, the marker survived.
    wait_for("NG NIN_V2 to come back online", lambda: ("NG", "NIN_V2", "offline") not in states(browser), 150)
    assert browser.execute_script("return window.__notReloaded") == 42, "the page was reloaded"
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1

    # Zero counts are not alarms: nothing with a zero count carries a state colour class.
    summary = browser.execute_script(
        "return Array.from(document.querySelectorAll('.summary > span')).map(s => [s.innerText, s.className])"
    )
    for text, cls in summary:
        if re.match(r"\S+ 0 ", text):
            assert cls == "zero", (text, cls)

    # A phone.
    browser.set_window_size(390, 844)
    time.sleep(0.5)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    browser.save_screenshot(str(SHOTS / "status-page-phone.png"))

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors


def test_badges_in_chromium(demo, browser):
    """Badges drawn by the browser as images on the status page (its Content-Security-Policy
    allows same-origin images), four times their size for the screenshot, and one on its own."""
    browser.set_window_size(1280, 1400)
    browser.get(demo)
    paths = ["/badge/NG/BVN.svg", "/badge/NG/NIN_V2.svg", "/badge/GH/GHANA_CARD.svg", "/badge/KE/KRA_PIN.svg"]
    # Not on the page: a pair not watched is a 404 with a badge that says so.
    unwatched = "/badge/NG/NOT_WATCHED.svg"
    shown = browser.execute_async_script(
        """const [paths, done] = [arguments[0], arguments[arguments.length - 1]];
        const box = document.createElement('div');
        box.id = 'badges';
        box.style.background = '#fff';
        box.style.padding = '16px';
        document.querySelector('header').append(box);
        const loaded = paths.map(p => new Promise(resolve => {
            const img = document.createElement('img');
            img.alt = p;
            img.onload = img.onerror = () => resolve([p, img.naturalWidth, img.naturalHeight]);
            img.src = p;
            img.style.display = 'block';
            img.style.margin = '8px 0';
            box.append(img);
        }));
        Promise.all(loaded).then(sizes => {
            // Four times their size, as a person would zoom in to read them.
            for (const img of box.querySelectorAll('img')) img.style.height = (4 * img.naturalHeight) + 'px';
            done(sizes);
        });""",
        paths + [unwatched],
    )
    for path, width, height in shown:
        assert width > 40 and height == 20, (path, width, height)
    widths = dict((p, w) for p, w, _ in shown)
    # Wider for longer text: "NG NIN_V2" and "interruption · ..." are longer than "NG BVN" and "online · ...".
    assert widths["/badge/GH/GHANA_CARD.svg"] > widths["/badge/NG/BVN.svg"], widths
    SHOTS.mkdir(exist_ok=True)
    browser.find_element(By.ID, "badges").screenshot(str(SHOTS / "badges.png"))
    # The only console error is the 404 of the badge not watched.
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert all("NOT_WATCHED" in e["message"] and "404" in e["message"] for e in errors), errors

    # On its own, as a README's image link opens it: an SVG document with its title.
    browser.get(demo.rstrip("/") + "/badge/NG/BVN.svg")
    title = browser.execute_script("return document.querySelector('title').textContent")
    assert re.fullmatch(r"NG BVN: (online|offline|interruption), \d+(\.\d)?% uptime over 7 days", title), title
    size = browser.execute_script("const r = document.documentElement.getBoundingClientRect(); return [r.width, r.height]")
    assert size[0] > 100 and size[1] == 20, size
