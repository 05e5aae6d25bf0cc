"""The HTML report in a real browser: headless Chromium driven over the DevTools protocol.

Reports are rendered from the committed samples (``results/samples/``: a small CPU run, CPU
kernel rows and a SYNTHETIC two-GPU set) and opened from a ``file://`` URL. The tests assert that
the page loads with no console error and no network request (DevTools ``Network`` events: the
only request is the page itself, beside the ``data:`` URLs plotly makes for bar patterns), that
every section's plot drew an SVG with content, and they write screenshots under the test's
temporary directory.

Chromium is Debian's ``chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it). When
it is absent the fixture tries to install it (as root, with apt-get); the tests skip, saying why,
only where that is impossible. The DevTools connection is ``--remote-debugging-pipe`` (file
descriptors 3 and 4, JSON messages ended by NUL): no websocket package, no port.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bench import report, results
from tests.bench.report.helpers import SAMPLES

CPU_SAMPLES = [SAMPLES / "cpu-smoke.jsonl", SAMPLES / "cpu-kernels.jsonl"]
SYNTHETIC = SAMPLES / "synthetic-2gpu.jsonl"
SECTION_IDS = [sid for sid, _, _ in report.SECTIONS]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def install_chromium() -> str:
    """Debian's chromium via apt-get (root only); returns why not where it cannot."""
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, cannot apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} timed out"
        if command[1] == "install" and done.returncode == 0:
            return ""
    return f"apt-get install chromium failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"


class Browser:
    """Headless Chromium over ``--remote-debugging-pipe``: send commands, collect events."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4; move our ends out of the way first.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]

        def child_fds() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                                         "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self.stderr, close_fds=False, preexec_fn=child_fds)
        for fd in (to_browser_r, from_browser_w, *high):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, session: bool = True, timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from chromium")
            if select.select([self._from_browser], [], [], left)[0]:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    self.stderr.seek(0)
                    raise RuntimeError("chromium exited: " + self.stderr.read().decode(errors="replace")[-2000:])
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open_page(self, width: int = 1400, height: int = 900) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                          "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, url: str, ready: str, timeout: float = 60) -> None:
        """Navigate and wait until ``ready`` (a JS expression) is true."""
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(ready):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{url}: {ready} never became true")

    def screenshot(self, path: Path, full_page: bool = True, clip_height: int | None = None) -> Path:
        width, height = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        params = {"format": "png", "captureBeyondViewport": True}
        if full_page or clip_height:
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": min(height, clip_height or height), "scale": 1}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params, timeout=120)["data"]))
        return path

    # What the page did, from the events collected so far
    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=10)
        except Exception:  # noqa: BLE001 - it is going away either way
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self.stderr.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CHROMIUM"):
            why = f"CHROMIUM={os.environ['CHROMIUM']} is not an executable"
        else:
            why = install_chromium() or f"none of {', '.join(CHROMIUM_NAMES)} is on PATH after installing"
            binary = find_chromium()
        if binary is None:
            pytest.skip(f"headless Chromium is not available and cannot be installed here: {why}")
    return binary


@pytest.fixture
def browser(chromium, tmp_path):
    profile = tmp_path / "chromium-profile"  # a fresh profile for every test
    profile.mkdir()
    try:
        b = Browser(chromium, profile)
        b.open_page()
    except (OSError, RuntimeError, TimeoutError) as error:
        pytest.skip(f"{chromium} does not start headless here: {error}")
    yield b
    b.close()


SECTION_STATE = """
Array.from(document.querySelectorAll("section.section")).map(function (s) {
  var plots = Array.from(s.querySelectorAll("div.plot"));
  return {id: s.id, plots: plots.length,
          drawn: plots.filter(function (p) {
            var svg = p.querySelector("svg.main-svg");
            return svg && svg.querySelectorAll("path, rect, text").length > 0
                   && p.getBoundingClientRect().height > 100;
          }).length,
          missing: s.querySelectorAll("p.missing").length};
})
"""
READY = "document.body && document.body.dataset.ready"


def open_report(browser: Browser, path: Path) -> dict:
    url = path.resolve().as_uri()
    browser.load(url, READY)
    assert browser.evaluate("document.body.dataset.ready") == "1", browser.console_errors()
    state = {s["id"]: s for s in browser.evaluate(SECTION_STATE)}
    assert list(state) == SECTION_IDS
    assert browser.console_errors() == []
    # plotly draws bar patterns from data: URLs it makes itself; anything else would be a fetch
    fetched = [u for u in browser.requests() if not u.startswith("data:")]
    assert fetched == [url], f"the report made network requests: {fetched}"
    return state


def test_samples_report_draws_every_section_offline(browser, tmp_path):
    """The CPU smoke run plus the synthetic two-GPU set: every section has data and draws it."""
    out = report.render([*CPU_SAMPLES, SYNTHETIC], tmp_path / "report.html")
    state = open_report(browser, out)
    for sid, section in state.items():
        assert section["plots"] >= 1 and section["drawn"] == section["plots"], section
    # the dropdown switches the platform; the table sorts; both without errors
    browser.evaluate("""(function () {
        var gd = document.querySelector('#summary div.plot');
        var buttons = gd.layout.updatemenus[0].buttons;
        return Plotly.update(gd, buttons[buttons.length - 1].args[0], buttons[buttons.length - 1].args[1]);
    })()""")
    before = browser.evaluate("document.querySelector('#summary tbody tr td:nth-child(8)').textContent")
    browser.evaluate("document.querySelector('#summary th:nth-child(8)').click()")
    browser.evaluate("document.querySelector('#summary th:nth-child(8)').click()")
    values = browser.evaluate("""Array.from(document.querySelectorAll('#summary tbody tr td:nth-child(8)'))
        .map(function (td) { return td.dataset.v === undefined ? null : Number(td.dataset.v); })""")
    numbers = [v for v in values if v is not None]
    assert numbers == sorted(numbers, reverse=True) and before is not None
    assert browser.console_errors() == []
    assert "SYNTHETIC" in browser.evaluate("document.querySelector('header').textContent")
    assert browser.evaluate("document.querySelectorAll('#environment .warning').length") >= 1
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 50_000


def test_cpu_only_report_says_what_is_missing(browser, tmp_path):
    """A CPU-only run: what has data draws; across-GPU comparison and clocks say they are missing."""
    out = report.render(CPU_SAMPLES, tmp_path / "cpu.html")
    state = open_report(browser, out)
    for sid in ("summary", "throughput", "memory", "correctness", "roofline"):
        assert state[sid]["plots"] >= 1 and state[sid]["drawn"] == state[sid]["plots"], state[sid]
    for sid in ("across", "environment"):
        assert state[sid]["missing"] >= 1, state[sid]
    assert "only one platform" in browser.evaluate("document.getElementById('across').textContent")
    browser.screenshot(tmp_path / "cpu.png")


def test_hostile_results_cannot_inject_script(browser, tmp_path):
    """Names, hosts and messages with markup are shown as text: no script runs, nothing loads."""
    rows = results.read_rows(SAMPLES / "cpu-smoke.jsonl")[:4]
    attack = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>'
    for row in rows:
        row.update(name="resnet18" + attack, host=attack, message=attack, run_id="run" + attack)
    rows[1].update(status="error")
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = report.render([path], tmp_path / "hostile.html")
    open_report(browser, out)
    assert browser.evaluate("window.__pwned === undefined")
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert attack in browser.evaluate("document.getElementById('summary').textContent")
