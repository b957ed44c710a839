"""Firefox for the browser suite: Debian's firefox-esr in headless mode, driven over its own remote
protocol (Marionette) by Mozilla's Python client (PyPI `marionette-driver`), behind the few selenium
WebDriver calls the tests make, so that every test runs unchanged in Chromium and in Firefox.

Why not selenium's Firefox driver: it needs geckodriver, which neither Debian nor PyPI ships for
Linux. Marionette is the protocol geckodriver itself speaks to Firefox, and it follows W3C WebDriver
(the same locator strategies, element commands, alerts and input actions).

The console: `get_log("browser")` reports the page's script errors, Content Security Policy reports
and `console.error` calls since the last call, in the shape the suite's `console_problems` reads from
Chromium (see `Firefox.get_log`)."""
import os
import re
import socket
import subprocess
import tempfile
import time

from marionette_driver import errors as mn
from marionette_driver.marionette import Alert, Marionette, WebElement
from selenium.common import exceptions as se
from selenium.webdriver.remote.command import Command

FIREFOX = os.environ.get("FIREFOX_BIN", "/usr/bin/firefox-esr")

PREFS = {
    "devtools.console.stdout.content": True,
    "browser.dom.window.dump.enabled": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.download.folderList": 2,
    "browser.download.useDownloadDir": True,
    "browser.download.always_ask_before_handling_new_types": False,
    "browser.download.start_downloads_in_tmp_dir": False,
    "browser.download.alwaysOpenPanel": False,
    "network.captive-portal-service.enabled": False,
    # No calls home: they fail offline and log errors that are Firefox's own, not the page's.
    "messaging-system.rsexperimentloader.enabled": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "services.settings.server": "data:,",
    "browser.region.update.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "network.connectivity-service.enabled": False,
}


def translated(call):
    """Runs a Marionette call, raising selenium's exception for Marionette's (WebDriverWait ignores
    selenium's NoSuchElementException while it waits)."""
    try:
        return call()
    except mn.NoSuchElementException as e:
        raise se.NoSuchElementException(str(e)) from e
    except mn.StaleElementException as e:
        raise se.StaleElementReferenceException(str(e)) from e
    except mn.NoAlertPresentException as e:
        raise se.NoAlertPresentException(str(e)) from e
    except mn.ElementNotInteractableException as e:
        raise se.ElementNotInteractableException(str(e)) from e
    except mn.JavascriptException as e:
        raise se.JavascriptException(str(e)) from e


class Element:
    def __init__(self, inner):
        self.inner = inner

    @property
    def text(self):
        return translated(lambda: self.inner.text)

    @property
    def tag_name(self):
        return translated(lambda: self.inner.tag_name)

    def click(self):
        translated(self.inner.click)

    def clear(self):
        translated(self.inner.clear)

    def send_keys(self, *values):
        translated(lambda: self.inner.send_keys(*values))

    def get_attribute(self, name):
        return translated(lambda: self.inner.get_attribute(name))

    def get_property(self, name):
        return translated(lambda: self.inner.get_property(name))

    @property
    def rect(self):
        return translated(lambda: self.inner.rect)

    def value_of_css_property(self, name):
        return translated(lambda: self.inner.value_of_css_property(name))

    def is_displayed(self):
        return translated(self.inner.is_displayed)

    def is_enabled(self):
        return translated(self.inner.is_enabled)

    def is_selected(self):
        return translated(self.inner.is_selected)

    def find_element(self, by, value):
        return Element(translated(lambda: self.inner.find_element(by, value)))

    def find_elements(self, by, value):
        return [Element(e) for e in translated(lambda: self.inner.find_elements(by, value))]


def wrapped(value):
    if isinstance(value, WebElement):
        return Element(value)
    if isinstance(value, list):
        return [wrapped(v) for v in value]
    if isinstance(value, dict):
        return {k: wrapped(v) for k, v in value.items()}
    return value


def unwrapped(value):
    if isinstance(value, Element):
        return value.inner
    if isinstance(value, (list, tuple)):
        return [unwrapped(v) for v in value]
    return value


class SwitchTo:
    def __init__(self, driver):
        self.driver = driver

    @property
    def alert(self):
        alert = Alert(self.driver.marionette)
        translated(lambda: alert.text)  # raises NoAlertPresentException when there is none
        return alert

    @property
    def active_element(self):
        return Element(translated(self.driver.marionette.get_active_element))


class Firefox:
    """The selenium WebDriver calls the suite makes, on a headless Firefox of its own profile."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="careledger-firefox-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        prefs = dict(PREFS, **{"marionette.port": port, "browser.download.dir": os.path.join(self.profile, "downloads")})
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for name, value in prefs.items():
                literal = "true" if value is True else "false" if value is False else repr(value) if isinstance(value, int) else f'"{value}"'
                f.write(f'user_pref("{name}", {literal});\n')
        self.console = open(os.path.join(self.profile, "console.log"), "w+")
        self.process = subprocess.Popen(
            [FIREFOX, "--headless", "--marionette", "-remote-allow-system-access", "--no-remote", "--profile", self.profile],
            stdout=self.console, stderr=subprocess.STDOUT, env=dict(os.environ, MOZ_CRASHREPORTER_DISABLE="1"))
        self.read_from = 0
        self.marionette = Marionette(host="127.0.0.1", port=port, startup_timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.marionette.start_session()
                break
            except (mn.MarionetteException, OSError, socket.error):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.5)
        self.marionette.set_window_rect(width=1280, height=900)
        self.switch_to = SwitchTo(self)
        self.errors_seen = 0

    # Navigation and lookup
    def get(self, url):
        translated(lambda: self.marionette.navigate(url))

    @property
    def current_url(self):
        return self.marionette.get_url()

    def refresh(self):
        self.marionette.refresh()

    def find_element(self, by, value):
        return Element(translated(lambda: self.marionette.find_element(by, value)))

    def find_elements(self, by, value):
        return [Element(e) for e in translated(lambda: self.marionette.find_elements(by, value))]

    # Scripts run in the page's own scope (sandbox=None), as WebDriver's do.
    def execute_script(self, script, *args):
        return wrapped(translated(lambda: self.marionette.execute_script(script, script_args=unwrapped(args), sandbox=None, new_sandbox=False)))

    def execute_async_script(self, script, *args):
        return wrapped(translated(lambda: self.marionette.execute_async_script(script, script_args=unwrapped(args), sandbox=None, new_sandbox=False)))

    def set_window_size(self, width, height):
        """Headless Firefox keeps its window at least 500 CSS pixels wide (the suite's phone-sized test
        asks for that there)."""
        self.marionette.set_window_rect(width=width, height=height)

    def set_script_timeout(self, seconds):
        self.marionette.timeout.script = seconds

    # Input actions: selenium's ActionChains encodes W3C actions, which Marionette performs as they are.
    def execute(self, command, params=None):
        if command == Command.W3C_ACTIONS:
            return translated(lambda: self.marionette._send_message("WebDriver:PerformActions", params))
        if command == Command.W3C_CLEAR_ACTIONS:
            return self.marionette._send_message("WebDriver:ReleaseActions")
        raise NotImplementedError(command)

    def execute_cdp_cmd(self, command, params):
        """Chromium's DevTools call for the download folder, done with Firefox's preference."""
        if command != "Page.setDownloadBehavior":
            raise NotImplementedError(command)
        self.marionette.set_pref("browser.download.dir", params["downloadPath"])

    def get_log(self, kind):
        """The page's errors since the last call: script errors and Content Security Policy reports
        from Firefox's console service (read in its chrome context), and the page's own
        `console.error` calls from standard output (a page's arguments are printed quoted, which
        tells them from Firefox's own messages there)."""
        assert kind == "browser"
        m = self.marionette
        with m.using_context(m.CONTEXT_CHROME):
            errors = m.execute_script("""
              return Services.console.getMessageArray()
                .filter((e) => e instanceof Ci.nsIScriptError)
                .map((e) => ({ message: e.errorMessage, category: e.category, warning: (e.flags & 1) === 1, source: e.sourceName || "" }));
            """)
        fresh, self.errors_seen = errors[self.errors_seen:], len(errors)
        entries = [
            {"level": "SEVERE", "source": "javascript", "message": e["message"].replace("Content-Security-Policy", "Content Security Policy")}
            for e in fresh
            if not e["warning"] and not re.match(r"^(chrome|resource)://", e["source"])
            and (e["category"].startswith("CSP") or e["category"] == "content javascript")
        ]
        self.console.flush()
        with open(self.console.name, encoding="utf-8", errors="replace") as f:
            f.seek(self.read_from)
            lines = f.read().splitlines()
            self.read_from = f.tell()
        entries += [{"level": "SEVERE", "source": "console-api", "message": line} for line in lines if line.startswith('console.error: "')]
        return entries

    def quit(self):
        try:
            self.marionette.delete_session()
        except Exception:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.console.close()
