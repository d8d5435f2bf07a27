"""
Dev script: screenshot the ``gradient`` connection form of a real Airflow UI for the docs.

Starts ``airflow api-server`` (see ``_api_server.py``), drives headless Chromium through Admin →
Connections → Add Connection, picks the "DigitalOcean Gradient" type, opens the extra fields and
saves the dialog twice: ``docs/img/connection-form.png`` (standard fields) and
``docs/img/connection-form-extras.png`` (the extra fields). Not part of ``make test``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``)
and Selenium (``uv pip install --python .venv/bin/python -e ".[screenshot]"``)::

    .venv/bin/python tests/ui/screenshot.py [--out-dir docs/img]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _api_server import running_api_server

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT_DIR = REPO / "docs" / "img"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1280,1800",
)
T = TypeVar("T")


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception:  # the page is still rendering
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise TimeoutError(f"the UI did not show {what} within {timeout:.0f}s")


def _button(driver: Any, text: str) -> Any:
    from selenium.webdriver.common.by import By

    matches = [b for b in driver.find_elements(By.CSS_SELECTOR, "button, a") if b.text.strip() == text]
    return next((b for b in matches if b.is_displayed()), None)


def take(out_dir: Path, chromium: str, chromedriver: str) -> list[Path]:
    """Run the server and the browser; write the PNGs into ``out_dir`` and return their paths."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with tempfile.TemporaryDirectory(prefix="gradient-ui-") as tmp, running_api_server(Path(tmp) / "airflow") as server:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'chromium-profile'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        try:
            # All-admins simple auth: this URL sets the login cookie, then goes to the home page.
            driver.get(f"{server.url}/auth/token/login?next={server.url}/")
            _wait_for("the Admin menu", lambda: _button(driver, "Admin")).click()
            _wait_for("Admin → Connections", lambda: _button(driver, "Connections")).click()
            _wait_for("Add Connection", lambda: _button(driver, "Add Connection")).click()

            conn_id = _wait_for("the Connection ID field", lambda: driver.find_element(By.NAME, "connection_id"))
            conn_id.send_keys("gradient_default")
            conn_type = driver.find_element(By.CSS_SELECTOR, "input[role=combobox]")
            conn_type.send_keys("DigitalOcean Gradient")
            _wait_for(
                "the DigitalOcean Gradient option",
                lambda: [o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if "Gradient" in o.text],
            )
            conn_type.send_keys(Keys.ENTER)

            _wait_for("the API token field", lambda: driver.find_element(By.NAME, "password").is_displayed())
            out_dir.mkdir(parents=True, exist_ok=True)
            standard, extras = out_dir / "connection-form.png", out_dir / "connection-form-extras.png"
            time.sleep(1.0)  # let the accordion animation settle
            driver.find_element(By.CSS_SELECTOR, "[role=dialog]").screenshot(str(standard))
            _wait_for("the Extra Fields section", lambda: _button(driver, "Extra Fields")).click()
            _wait_for(
                "the extra fields", lambda: driver.find_element(By.NAME, "element_requests_per_hour").is_displayed()
            )
            time.sleep(1.0)  # let the accordion animation settle
            driver.find_element(By.CSS_SELECTOR, "[role=dialog]").screenshot(str(extras))
        finally:
            driver.quit()
    return [standard, extras]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help=f"default {DEFAULT_OUT_DIR}")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    for path in take(args.out_dir, args.chromium, args.chromedriver):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
