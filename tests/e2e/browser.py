"""A real Chromium for the workspace's tests, driven by Selenium, with axe-core checking every page.

Nothing is downloaded: Debian's chromium and chromium-driver, and the axe-core copy that ships inside
axe-selenium-python.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import presence_of_element_located, staleness_of
from selenium.webdriver.support.wait import WebDriverWait

REPO_ROOT = Path(__file__).resolve().parents[2]
# Not docs/screenshots by default: a test run should leave the checkout as it found it. Pointing this at
# docs/screenshots refreshes the README's pictures.
SCREENSHOTS = Path(os.environ.get("WERKBRUG_SCREENSHOTS", REPO_ROOT / "var" / "screenshots"))
CHROMEDRIVER = "/usr/bin/chromedriver"
BLOCKING_IMPACTS = ("serious", "critical")


def chromium_available() -> bool:
    return Path(CHROMEDRIVER).exists() and bool(shutil.which("chromium"))


class Browser:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.profile = tempfile.mkdtemp(prefix="werkbrug-chromium-")
        options = webdriver.ChromeOptions()
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1100,1100",
            "--lang=nl-NL",
            f"--user-data-dir={self.profile}",
        ):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.implicitly_wait(0)
        self.checked: list[str] = []

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.check_accessibility()

    def check_accessibility(self) -> None:
        """axe-core on the page as it is now: no serious or critical violations."""
        axe = Axe(self.driver)
        axe.inject()
        results = axe.run()
        blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]
        where = self.driver.current_url
        self.checked.append(where)
        assert not blocking, f"axe on {where}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in blocking
        )

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, name: str, value: str) -> None:
        field = self.find(f'[name="{name}"]')
        field.clear()
        field.send_keys(value)

    def set_value(self, name: str, value: str) -> None:
        """For inputs such as type=date, whose typing depends on the browser's locale."""
        self.driver.execute_script("arguments[0].value = arguments[1]", self.find(f'[name="{name}"]'), value)

    def submit(self, form_css: str = "form.werkbrug-form") -> None:
        self.press(self.find(f'{form_css} button[type="submit"]'))

    def press(self, button) -> None:
        """Click a button that posts a form, and wait for the next page before looking at it: a click returns
        before the browser has left the page, and the old page's elements then go stale under the test."""
        button.click()
        # While the browser swaps documents, chromedriver can also answer with an error of its own ("unhandled
        # inspector error"): that is the page moving on too, so the wait looks again rather than fail.
        settling = WebDriverWait(self.driver, 30, ignored_exceptions=(WebDriverException,))
        settling.until(staleness_of(button))
        settling.until(lambda driver: driver.execute_script("return document.readyState") == "complete")
        self.check_accessibility()

    @property
    def heading(self) -> str:
        # Waited for: right after a navigation the new document can still be empty when the test looks.
        found = WebDriverWait(self.driver, 10, ignored_exceptions=(WebDriverException,))
        return found.until(presence_of_element_located((By.CSS_SELECTOR, "h1"))).text

    @property
    def text(self) -> str:
        return self.find("body").text

    def wait_for(self, probe: Callable[[], bool], timeout: float, what: str, reload: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except WebDriverException:
                pass  # the page was being replaced as the probe looked: look again
            time.sleep(0.5)
            if reload:
                self.driver.refresh()
        raise AssertionError(f"no {what} within {timeout}s on {self.driver.current_url}")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def sign_in(self, email: str, password: str) -> None:
        self.open("/sign-in")
        self.fill("email", email)
        self.fill("password", password)
        self.submit()
