"""The fleet dashboard in a real Chromium against a real ``kcrash server`` process.

The server is filled from real inputs only: two vmcores of the corpus (analysed by the
server itself), and report JSONs made once per session by ``kcrash analyze --format json``
from the corpus's vmcore-dmesg.txt logs and the oops logs of tests/data/oops (each with its
public source recorded there).  The corpus is required: without it these tests fail.

Screenshots of every page land in the session's temporary directory; set
``KCRASH_SCREENSHOTS=docs/screenshots`` to keep the README's ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import pick
from dashboard_browser import Browser, keep_screenshots
from server_process import ServerProcess, kcrash_env, make_token

pytestmark = pytest.mark.corpus

OOPS = Path(__file__).parent / "data" / "oops"
REPORT_I18N = Path(__file__).parent.parent / "src" / "kcrash" / "report" / "i18n"
WEB_I18N = Path(__file__).parent.parent / "src" / "kcrash" / "server" / "web" / "i18n"
#: Oops logs turned into report JSONs: ten classes from several kernels and trackers.
OOPS_LOGS = [
    OOPS / name
    for name in (
        "x86-oops-gpf-6.x.txt",
        "x86-lockdep-4.12.txt",
        "x86-kcsan.txt",
        "x86-memleak.txt",
        "x86-panic-double-fault.txt",
        "x86-null-old-wording.txt",
        "x86-oops-invalid-opcode-6.15.txt",
        "x86-mce-fatal-quoted.txt",
        "x86-suspicious-rcu.txt",
        "x86-ubsan-old.txt",
    )
]
#: (kernel, scenario) of the corpus logs and dumps the fleet "sent"; a scenario on three
#: kernels makes one bucket with three kernels and hosts.
DMESG = [
    ("deb11", "null-deref"),
    ("deb12", "null-deref"),
    ("deb13", "null-deref"),
    ("deb12", "bug-on"),
    ("deb12", "warn"),
]
VMCORES = [("deb12", "null-deref"), ("deb12", "bug-on")]
#: The hardware a corpus guest reports (QEMU's default machine type, in its DMI data).
QEMU_PC = "QEMU Standard PC (i440FX + PIIX, 1996)"


def _corpus_entry(corpus: list[dict[str, Any]], kernel: str, scenario: str) -> dict[str, Any]:
    found = pick(corpus, kernel=kernel, scenario=scenario, format="kdump", compression="zlib")
    assert found, f"the corpus has no {kernel} {scenario} kdump-zlib dump"
    return found[0]


def _analyze_json(path: Path) -> bytes:
    out = subprocess.run(
        [sys.executable, "-m", "kcrash", "analyze", str(path), "--format", "json"],
        env=kcrash_env(),
        capture_output=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """A running server holding 2 vmcores and ~20 reports from ~10 hosts, all analysed."""
    data = tmp_path_factory.mktemp("dashboard") / "data"
    dumps = {k: _corpus_entry(corpus, *k) for k in {*DMESG, *VMCORES}}
    extra = ["--workers", "2"]
    for k in sorted({str(Path(e["vmlinux"]).parent) for e in dumps.values()}):
        extra += ["--debuginfo", k]
    srv = ServerProcess(data, extra=extra)
    tokens = {r: make_token(data, r) for r in ("submit", "read", "admin")}
    srv.start()
    try:
        subs: list[tuple[bytes, dict[str, str]]] = []
        for kernel, scenario in VMCORES:
            e = dumps[(kernel, scenario)]
            facts = {"host": f"{kernel}-{scenario}-vm", "kernel_release": e["release"]}
            subs.append((Path(e["path"]).read_bytes(), facts | {"hardware": QEMU_PC}))
        logs = [Path(dumps[k]["dmesg"]) for k in DMESG] + OOPS_LOGS
        with ThreadPoolExecutor(4) as pool:
            reports = list(pool.map(_analyze_json, logs))
        for i, ((kernel, scenario), rep) in enumerate(zip(DMESG, reports, strict=False)):
            e = dumps[(kernel, scenario)]
            facts = {
                "host": f"node-{i + 1:02d}",
                "kernel_release": e["release"],
                "distro": f"Debian {kernel[3:]}",
                "hardware": QEMU_PC,
            }
            subs.append((rep, facts))
        for i, rep in enumerate(reports[len(DMESG) :]):
            subs.append((rep, {"host": f"lab-{i % 6 + 1:02d}"}))
        ids = []
        for body, facts in subs:
            headers = {f"X-Kcrash-{k.replace('_', '-').title()}": v for k, v in facts.items()}
            status, answer, _h = srv.request(
                "POST", "/api/v1/crashes", tokens["submit"], body=body, headers=headers
            )
            assert status == 202, (status, answer[:500], srv.log.read_text()[-3000:])
            ids.append(json.loads(answer)["id"])
        crashes = [srv.wait_done(tokens["read"], i, timeout=600) for i in ids]
        for c in crashes:
            assert c["status"] == "done", c["error"]
        yield {"server": srv, "tokens": tokens, "crashes": crashes, "vmcore_ids": ids[:2]}
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser(fleet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    shots = tmp_path_factory.mktemp("screenshots")
    b = Browser(fleet["server"].url, shots)
    try:
        yield b
    finally:
        b.quit()
        if os.environ.get("KCRASH_SCREENSHOTS"):
            keep_screenshots(
                shots,
                Path(os.environ["KCRASH_SCREENSHOTS"]),
                ["overview", "bucket", "crash", "search", "host", "overview-zh-dark"],
            )


def _by(css: str) -> Any:
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, css)


def _null_bucket(fleet: dict[str, Any]) -> str:
    """The bucket of the deb12 null-deref vmcore (it also holds three dmesg reports)."""
    first = next(c for c in fleet["crashes"] if c["id"] == fleet["vmcore_ids"][0])
    return str(first["bucket"])


def _pages(fleet: dict[str, Any]) -> dict[str, str]:
    vm = fleet["vmcore_ids"][0]
    return {
        "overview": "/",
        "buckets": "/buckets",
        "bucket": f"/buckets/{_null_bucket(fleet)}",
        "crash": f"/crashes/{vm}",
        "search": "/search?class=null-deref",
        "hosts": "/hosts",
        "host": "/hosts/node-02",
    }


def test_every_page_loads_without_console_errors(fleet: dict[str, Any], browser: Browser) -> None:
    browser.get("/")
    assert browser.path().startswith("/login"), "a page without a login must ask for one"
    browser.shot("login")
    browser.login(fleet["tokens"]["admin"])
    browser.wait_path("/", exact=True)
    browser.console_errors()
    for name, path in _pages(fleet).items():
        browser.get(path)
        d = browser.driver
        assert d.find_element(*_by("main h1")).text.strip(), name
        assert "Error" not in d.title, (name, d.title)
        assert "bound method" not in d.page_source, name  # a label shadowed by a method
        assert browser.console_errors() == [], name
        browser.shot(name)
    # Charts are inline SVG drawn by the server, with a bar per class and day.
    browser.get("/")
    assert browser.driver.find_elements(*_by("svg.chart rect")), "no bar in the chart"
    # Every asset is served by kcrash itself (nothing from another origin).
    srcs = browser.driver.execute_script(
        "return [...document.querySelectorAll('[src],[href]')]"
        ".map(e => e.src || e.href).filter(Boolean)"
    )
    assert all(s.startswith(fleet["server"].url) for s in srcs), srcs


def test_navigation_overview_bucket_crash_host(fleet: dict[str, Any], browser: Browser) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.login(fleet["tokens"]["read"])
    d = browser.driver
    browser.get("/")
    # The keyboard first reaches the skip link, which jumps over the navigation.
    d.find_element(*_by("body")).send_keys(Keys.TAB)
    assert d.switch_to.active_element.get_attribute("class") == "skip"
    sig = _null_bucket(fleet)
    d.find_element(*_by(f'#top ~ table a[href="/buckets/{sig}"]')).send_keys(Keys.ENTER)
    browser.wait_path(f"/buckets/{sig}", exact=True)
    assert "kcrash_get_refcount" in d.find_element(*_by("main")).text
    assert d.find_elements(*_by("svg.chart")), "the bucket page has no timeline"
    vm = fleet["vmcore_ids"][0]
    d.find_element(*_by(f'main a[href="/crashes/{vm}"]')).click()
    browser.wait_path(f"/crashes/{vm}", exact=True)
    report = d.find_element(*_by(".report")).text
    assert "kcrash_get_refcount" in report and "null" in report.lower()
    d.find_element(*_by('.head a[href^="/hosts/"]')).click()
    browser.wait_path("/hosts/deb12-null-deref-vm", exact=True)
    assert f"/crashes/{vm}" in d.page_source
    assert browser.console_errors() == []


def test_filters_and_state_changes_persist(fleet: dict[str, Any], browser: Browser) -> None:
    from selenium.webdriver.support.ui import Select

    browser.login(fleet["tokens"]["admin"])
    d = browser.driver
    browser.get("/search")
    Select(d.find_element(*_by('select[name="class"]'))).select_by_value("null-deref")
    kernel = d.find_element(*_by('input[name="kernel"]'))
    kernel.send_keys("6.1.0-57-amd64")
    kernel.submit()
    path = browser.wait_path("/search?")
    assert "class=null-deref" in path and "kernel=6.1.0-57-amd64" in path
    d.refresh()
    assert (
        Select(d.find_element(*_by('select[name="class"]'))).first_selected_option.get_attribute(
            "value"
        )
        == "null-deref"
    )
    assert d.find_element(*_by('input[name="kernel"]')).get_attribute("value") == "6.1.0-57-amd64"
    rows = d.find_elements(*_by("table.list tbody tr"))
    assert len(rows) == 2, [r.text for r in rows]  # the deb12 vmcore and its dmesg report
    assert all("6.1.0-57-amd64" in r.text for r in rows)

    # A person marks the bucket fixed in a release; a reload and the API both show it.
    sig = _null_bucket(fleet)
    browser.get(f"/buckets/{sig}")
    d.find_element(*_by('input[name="state"][value="fixed"]')).click()
    box = d.find_element(*_by('input[name="fixed_in"]'))
    box.clear()
    box.send_keys("6.1.0-60-amd64")
    box.submit()
    browser.wait_path(f"/buckets/{sig}?saved=1", exact=True)
    d.refresh()
    assert "6.1.0-60-amd64" in d.find_element(*_by(".head .state")).text
    status, b = fleet["server"].json("GET", f"/api/v1/buckets/{sig}", fleet["tokens"]["read"])
    assert status == 200 and (b["state"], b["fixed_in"]) == ("fixed", "6.1.0-60-amd64")
    # The bucket list filtered by state finds it, and a reload keeps the filter.
    browser.get("/buckets?state=fixed")
    d.refresh()
    links = [a.get_attribute("href") for a in d.find_elements(*_by("table.list a"))]
    assert any(h.endswith(f"/buckets/{sig}") for h in links), links
    # Back to open, so the other tests see the bucket as the analysis left it.
    browser.get(f"/buckets/{sig}")
    d.find_element(*_by('input[name="state"][value="open"]')).click()
    d.find_element(*_by('input[name="fixed_in"]')).submit()
    browser.wait_path(f"/buckets/{sig}?saved=1", exact=True)
    d.refresh()
    assert d.find_element(*_by(".head .st-open"))
    assert browser.console_errors() == []


def _zh_words() -> set[str]:
    """ASCII words the Chinese catalogues themselves use (Panic, CPU, lockdep, kcrash …)."""
    words: set[str] = set()
    for path in [*REPORT_I18N.glob("*.zh.json"), *WEB_I18N.glob("*.zh.json")]:
        for value in json.loads(path.read_text("utf-8")).values():
            words.update(re.findall(r"[A-Za-z]{2,}", str(value)))
    return words


def test_chinese_pages_show_no_english_labels(fleet: dict[str, Any], browser: Browser) -> None:
    browser.login(fleet["tokens"]["admin"])
    allowed = _zh_words()
    browser.get("/?lang=zh")  # the choice is remembered in a cookie from here on
    for name, path in _pages(fleet).items():
        browser.get(path)
        assert browser.driver.find_element(*_by("html")).get_attribute("lang") == "zh"
        text = browser.visible_text()
        english = sorted({w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in allowed})
        assert english == [], (name, english)
        assert re.search(r"[\u4e00-\u9fff]", text), name
        assert browser.console_errors() == [], name
        if name == "overview":
            browser.driver.find_element(*_by("#theme")).click()  # auto -> light
            browser.driver.find_element(*_by("#theme")).click()  # light -> dark
            browser.shot("overview-zh-dark")
        else:
            browser.shot(f"{name}-zh")
    browser.get("/?lang=en")


def test_read_only_user_cannot_reach_a_dump(fleet: dict[str, Any], browser: Browser) -> None:
    srv: ServerProcess = fleet["server"]
    vm = fleet["vmcore_ids"][0]
    browser.login(fleet["tokens"]["read"])
    browser.get(f"/crashes/{vm}")
    d = browser.driver
    assert d.find_elements(*_by('a[href$="/report.json"]')), "the JSON report link is missing"
    assert not d.find_elements(*_by("#dump")), "a read-only user sees the dump link"
    assert f"/crashes/{vm}/dump" not in d.page_source
    read_cookie = browser.cookie()
    status, _body, _h = srv.request(
        "GET", f"/crashes/{vm}/dump", None, headers={"Cookie": f"kcrash_session={read_cookie}"}
    )
    assert status == 403
    status, _body, _h = srv.request("GET", f"/api/v1/crashes/{vm}/dump", fleet["tokens"]["read"])
    assert status == 403
    # The JSON report is theirs to download.
    status, body, _h = srv.request(
        "GET",
        f"/crashes/{vm}/report.json",
        None,
        headers={"Cookie": f"kcrash_session={read_cookie}"},
    )
    assert status == 200 and json.loads(body)["verdict"]["class"] == "null-deref"
    # The admin sees the link, and it serves the very file uploaded.
    browser.login(fleet["tokens"]["admin"])
    browser.get(f"/crashes/{vm}")
    href = d.find_element(*_by("#dump")).get_attribute("href")
    assert href.endswith(f"/crashes/{vm}/dump")
    status, body, _h = srv.request(
        "GET", f"/crashes/{vm}/dump", None, headers={"Cookie": f"kcrash_session={browser.cookie()}"}
    )
    crash = next(c for c in fleet["crashes"] if c["id"] == vm)
    assert status == 200 and hashlib.sha256(body).hexdigest() == crash["sha256"]
    # A forged or missing session is sent to the login page, never served.
    status, _body, _h = srv.request(
        "GET", f"/crashes/{vm}/dump", None, headers={"Cookie": "kcrash_session=kcrash_forged"}
    )
    assert b'id="token"' in _body and hashlib.sha256(_body).hexdigest() != crash["sha256"]
