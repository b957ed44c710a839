"""The browser suite: every test in headless Chromium (Debian's chromium and chromium-driver, driven by
selenium) and in headless Firefox (Debian's firefox-esr, driven over Marionette: see firefox.py),
against a live `careledger up`. `CARELEDGER_BROWSERS=chromium` (or `firefox`) runs one of them."""
import os
import sys

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Interop"))
from careledger_node import BINARY, cli, running_node  # noqa: E402

BROWSERS = [b for b in os.environ.get("CARELEDGER_BROWSERS", "chromium,firefox").split(",") if b]
VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "vectors")
CHAIN_FORMATS = os.path.join(os.path.dirname(__file__), "..", "LedgerCoreTests", "Vectors", "chain-formats.json")


def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")), options=options)


@pytest.fixture(scope="module", params=BROWSERS)
def kind(request):
    """The browser a module's tests run in; each browser gets a node of its own (the tests change the
    ledger: a pack dispensed in one browser could not be dispensed again in the other)."""
    return request.param


@pytest.fixture(scope="module")
def node(kind):
    with running_node("careledger-browser-") as (url, data):
        yield url, data


def open_browser(kind):
    if kind == "firefox":
        from firefox import Firefox
        driver = Firefox()
    else:
        driver = chromium()
    driver.kind = kind
    driver.set_script_timeout(120)
    return driver


@pytest.fixture()
def browser(kind):
    driver = open_browser(kind)
    yield driver
    driver.quit()


def console_problems(driver, refusals=()):
    """Browser console entries that are errors or Content-Security-Policy violations. `refusals`: HTTP
    statuses the test itself provoked (Chromium logs a fetch answered 403 as a network error): those
    network entries, and only those, are not problems."""
    def expected(e):
        return e.get("source") == "network" and any(f"status of {s} " in e["message"] for s in refusals)
    return [e for e in driver.get_log("browser") if (e["level"] == "SEVERE" or "Content Security Policy" in e["message"]) and not expected(e)]
