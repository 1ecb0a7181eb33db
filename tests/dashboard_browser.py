"""A real headless Chromium driven through Debian's chromedriver, for the dashboard's tests.

Nothing is downloaded: Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver
(Debian's ``chromium`` and ``chromium-driver``, in .ci/setup's host table); without them the
tests FAIL with the command that installs them.  The browser's console is read through
``goog:loggingPrefs`` so a page that logs an error (a missing asset, a script error, a
refused inline style) fails its test, and every page visited can be saved as a screenshot.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: A laptop screen: what the dashboard must be readable on.
WINDOW = (1366, 900)

#: Visible text of the page without what is not translated on purpose: elements in another
#: language (lang="en" around a report analysed in English, the "English" switch), names
#: and identifiers (translate="no": hosts, kernels, titles, signatures), code and the SVG.
VISIBLE_TEXT_JS = """
const body = document.body.cloneNode(true);
body.querySelectorAll('[lang]:not([lang^="zh"]), [translate="no"], code, pre, svg, script,'
  + ' style, option:not(:checked)').forEach(e => e.remove());
body.style.position = 'absolute'; body.style.left = '-10000px';
document.documentElement.appendChild(body);
const text = body.innerText;
body.remove();
return text;
"""


class Browser:
    """One Chromium session: ``get`` a path, read its console errors, save screenshots."""

    def __init__(self, base_url: str, shots: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
            if not os.access(path, os.X_OK):
                pytest.fail(f"{path} is missing: apt-get install {pkg} (see .ci/setup)")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # root in a container: the sandbox needs user namespaces
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--lang=en-US",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
        ):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(60)
        self.base = base_url
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)

    def quit(self) -> None:
        self.driver.quit()

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)

    def path(self) -> str:
        url: str = self.driver.current_url
        return url[len(self.base) :] if url.startswith(self.base) else url

    def wait_path(self, start: str, *, exact: bool = False, timeout: float = 30) -> str:
        """The path once the browser shows ``start`` (or one starting with it): a form or a
        link was followed, and on a busy machine the next page takes a moment to arrive."""
        from selenium.webdriver.support.ui import WebDriverWait

        def there(_d: Any) -> bool:
            p = self.path()
            return p == start if exact else p.startswith(start)

        try:
            WebDriverWait(self.driver, timeout).until(there)
        except Exception:
            raise AssertionError(f"the browser is at {self.path()}, not {start}") from None
        return self.path()

    def console_errors(self) -> list[dict[str, Any]]:
        """Console messages of level SEVERE since the last call (the log drains on read)."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def shot(self, name: str) -> Path:
        """The whole page as PNG: the window grows to the document's height first."""
        d = self.driver
        height = d.execute_script("return document.documentElement.scrollHeight")
        d.set_window_size(WINDOW[0], min(max(int(height), WINDOW[1]), 4000))
        time.sleep(0.1)
        out = self.shots / f"{name}.png"
        d.save_screenshot(str(out))
        d.set_window_size(*WINDOW)
        return out

    def visible_text(self) -> str:
        return str(self.driver.execute_script(VISIBLE_TEXT_JS))

    def login(self, token: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.delete_all_cookies()
        self.get("/login")
        box = self.driver.find_element(By.ID, "token")
        box.send_keys(token)
        box.submit()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 30).until(lambda _d: not self.path().startswith("/login"))

    def cookie(self) -> str:
        c = self.driver.get_cookie("kcrash_session")
        return str(c["value"]) if c else ""


def keep_screenshots(shots: Path, dest: Path, names: list[str]) -> None:
    """Copy chosen screenshots (``KCRASH_SCREENSHOTS=DIR`` when running the tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        src = shots / f"{n}.png"
        if src.exists():
            shutil.copyfile(src, dest / src.name)
