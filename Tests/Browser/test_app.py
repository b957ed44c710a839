"""The web app as people use it, in headless Chromium against `careledger up`: Alice signs in with her
key file, reads the record Dr Bob wrote (decrypted in the browser; a script in a FHIR field shown as
text), grants Dr Carol and revokes; an auditor checks a receipt. On every page: no console error, no
CSP violation, no serious or critical axe violation, no record plaintext in browser storage."""
import hashlib
import json
import os
import subprocess
import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from selenium_axe_python import Axe

from conftest import BINARY, cli, console_problems, open_browser

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def did(data, name):
    return cli("key", "show", "--key", f"{data}/keys/{name}.key").strip()


def run(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def alice_with_records(node):
    url, data = node
    keys = f"{data}/keys"
    bob, hospital = did(data, "dr-bob"), did(data, "hospital-a")
    cli("consent", "grant", "--node", url, "--key", f"{keys}/alice.key", "--grantee", bob)
    for resource in (
        {"resourceType": "Condition", "id": "asthma-1", "code": {"text": "Asthma"}, "clinicalStatus": {"text": "active"}},
        {"resourceType": "Observation", "id": "note-1", "status": "final", "code": {"text": "Note"}, "valueString": XSS},
    ):
        path = f"{data}/{resource['id']}.json"
        with open(path, "w") as f:
            json.dump(resource, f)
        cli("record", "put", "--node", url, "--key", f"{keys}/dr-bob.key", "--patient", did(data, "alice"), "--file", path, "--custodian", hospital)
    return url, data


def wait_for(driver, condition, timeout=30):
    return WebDriverWait(driver, timeout).until(condition)


def heading(driver, text):
    try:
        wait_for(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main h1"), text))
    except Exception:
        print("the page when the heading did not come:", driver.current_url, driver.find_element(By.CSS_SELECTOR, "body").text[:500])
        raise


def accessible(driver):
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    serious = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
    assert serious == [], json.dumps([(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in serious])


def sign_in(driver, url, key_file):
    driver.get(url + "/app/")
    heading(driver, "Welcome")
    driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(key_file)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def storage_is_clean(driver):
    """Nothing of a record in localStorage, sessionStorage, the Cache API or IndexedDB (keys not kept)."""
    found = driver.execute_async_script("""
      const done = arguments[arguments.length - 1];
      (async () => {
        const caches_ = await caches.keys();
        const dbs = indexedDB.databases ? await indexedDB.databases() : [];
        let kept = null;
        if (dbs.some((d) => d.name === "careledger")) {
          kept = await new Promise((resolve) => {
            const r = indexedDB.open("careledger");
            r.onsuccess = () => {
              const tx = r.result.transaction("identity", "readonly");
              const g = tx.objectStore("identity").getAllKeys();
              g.onsuccess = () => resolve(g.result);
            };
            r.onerror = () => resolve(null);
          });
        }
        done({ local: localStorage.length, session: sessionStorage.length, caches: caches_.length, kept });
      })();
    """)
    assert found["local"] == 0 and found["session"] == 0 and found["caches"] == 0, found
    assert not found["kept"], found


def revoke_grant(driver, grantee):
    """Revokes the one active grant to `grantee` on the consents page, confirming."""
    def button(d):
        try:
            found = [b for b in d.find_elements(By.CSS_SELECTOR, "button[data-grant]") if grantee[:14] in b.find_element(By.XPATH, "..").text]
            return found[0] if len(found) == 1 else False
        except StaleElementReferenceException:
            return False  # the list was drawn anew meanwhile
    def gone(d):
        try:
            return not any(grantee[:14] in b.find_element(By.XPATH, "..").text for b in d.find_elements(By.CSS_SELECTOR, "button[data-grant]"))
        except StaleElementReferenceException:
            return False
    wait_for(driver, button).click()
    wait_for(driver, EC.alert_is_present()).accept()
    wait_for(driver, EC.text_to_be_present_in_element((By.ID, "notices"), "Revoked"))
    wait_for(driver, gone)  # and the list drawn anew without it


def test_alice_reads_grants_and_revokes(alice_with_records, browser):
    url, data = alice_with_records
    keys = f"{data}/keys"
    carol = did(data, "dr-carol")
    browser.get(url + "/app/")
    heading(browser, "Welcome")
    accessible(browser)
    sign_in(browser, url, f"{keys}/alice.key")
    heading(browser, "My health record")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Asthma"))
    main = browser.find_element(By.CSS_SELECTOR, "main").text
    assert "Condition (1)" in main and "Observation (1)" in main
    # The script in a FHIR field is shown as text and never runs.
    assert XSS in main
    assert browser.execute_script("return window.__xss") is None
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    accessible(browser)
    storage_is_clean(browser)

    # Dr Carol has no consent: refused. Alice grants her, in the app; Dr Carol reads; Alice revokes; refused again.
    assert run("record", "get", "--node", url, "--key", f"{keys}/dr-carol.key", "--id", "asthma-1").returncode == 1
    browser.get(url + "/app/#/consents")
    heading(browser, "Who may see what")
    accessible(browser)
    browser.find_element(By.NAME, "grantee").send_keys(carol)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "Granted"))
    read = run("record", "get", "--node", url, "--key", f"{keys}/dr-carol.key", "--id", "asthma-1")
    assert read.returncode == 0 and "Asthma" in read.stdout, read.stderr
    revoke_grant(browser, carol)
    assert run("record", "get", "--node", url, "--key", f"{keys}/dr-carol.key", "--id", "asthma-1").returncode == 1

    # A grant of one category: laboratory covers her Observation, not her Condition.
    browser.find_element(By.NAME, "grantee").send_keys(carol)
    browser.find_element(By.ID, "grant-category-laboratory").click()
    assert not browser.find_element(By.NAME, "everything").is_selected(), "a category means not everything"
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main .consents"), "may see laboratory for treatment"))
    assert [g["categories"] for g in json.loads(cli("consent", "list", "--node", url, "--key", f"{keys}/alice.key", "--json"))["consents"]
            if g["grantee"] == carol and g["status"] == "active"] == [["laboratory"]]
    observation = run("record", "get", "--node", url, "--key", f"{keys}/dr-carol.key", "--id", "note-1")
    assert observation.returncode == 0 and "Note" in observation.stdout, observation.stderr
    assert run("record", "get", "--node", url, "--key", f"{keys}/dr-carol.key", "--id", "asthma-1").returncode == 1
    revoke_grant(browser, carol)

    # A grant by name, with an end: "Hospital" is ambiguous (A and B), "Hospital A" is not.
    grantee = browser.find_element(By.NAME, "grantee")
    grantee.send_keys("Hospital")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main form"), "Several match"))
    grantee = browser.find_element(By.NAME, "grantee")
    grantee.clear()
    grantee.send_keys("Hospital A")
    browser.execute_script("document.querySelector('input[name=until]').value = arguments[0]", "2099-01-31")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main .consents"), "Hospital A may see all your records for treatment until"))
    consents = json.loads(cli("consent", "list", "--node", url, "--key", f"{keys}/alice.key", "--json"))
    hospital_a = [g for g in consents["consents"] if g["grantee"] == did(data, "hospital-a") and g["status"] == "active"]
    assert len(hospital_a) == 1 and hospital_a[0]["end"] > 4_000_000_000_000, hospital_a

    # What was released: Dr Carol's read under the grant, in the accounting of disclosures.
    browser.execute_script("location.hash = '#/disclosures'")
    heading(browser, "Disclosures")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Condition/asthma-1"))
    accessible(browser)

    # Who looked: Dr Bob's write, Dr Carol's refusals and read.
    browser.get(url + "/app/#/access-log")
    heading(browser, "Who looked")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "main tbody tr")))
    log = browser.find_element(By.CSS_SELECTOR, "main table").text
    assert "denied" in log and "read" in log
    accessible(browser)
    storage_is_clean(browser)
    assert console_problems(browser) == []


def test_an_auditor_checks_a_receipt(alice_with_records, browser):
    url, data = alice_with_records
    digest = hashlib.sha256(b"discharge letter, browser suite").hexdigest()
    submitted = run("tx", "submit", "--node", url, "--key", f"{data}/keys/hospital-b.key", "--contract", "notary", "--action", "record",
                    "--payload", json.dumps({"hash": digest, "label": "browser"}), "--wait", "--json")
    assert submitted.returncode == 0, submitted.stderr
    tx = json.loads(submitted.stdout)["id"]
    browser.get(url + "/app/#/ledger")
    heading(browser, "Ledger")
    accessible(browser)
    field = browser.find_element(By.NAME, "transaction")
    field.send_keys("not an id")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main form"), "64 hexadecimal digits"))
    field.clear()
    field.send_keys(tx)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "verdict"), "erified"))
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict.startswith("Verified") and "final" in verdict, verdict
    # The explorer: a block with its header, checkpoint, certificate and transactions; misbehaviour seen (none).
    assert "None: no refused proposal" in browser.find_element(By.CSS_SELECTOR, "main").text
    height = json.loads(submitted.stdout)["height"]
    browser.find_element(By.CSS_SELECTOR, f"main tbody a[href='#/ledger/block/{height}']").click()
    heading(browser, f"Block {height}")
    block = browser.find_element(By.CSS_SELECTOR, "main").text
    assert "final" in block and "careledger/" in block and tx[:16] in block, block
    accessible(browser)
    browser.find_element(By.CSS_SELECTOR, f"main a[href='#/ledger/tx/{tx}']").click()
    heading(browser, "Ledger")
    assert browser.find_element(By.NAME, "transaction").get_attribute("value") == tx
    assert console_problems(browser) == []


def test_a_patient_creates_her_identity_and_restores_it(node, browser, tmp_path):
    """A new patient makes her keys in the browser and registers; her encrypted backup (PBKDF2-SHA256,
    600,000 iterations, AES-256-GCM) opens with Python's `cryptography` to a key file the CLI reads as
    the same did; restored in a fresh browser with the passphrase, it signs her in; a wrong one does not."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    url, _ = node
    passphrase = "correct horse battery staple"
    browser.get(url + "/app/")
    heading(browser, "Welcome")
    browser.find_element(By.NAME, "newpassphrase").send_keys("too short")
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=create-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "form[aria-labelledby=create-title]"), "12 characters or more."))
    field = browser.find_element(By.NAME, "newpassphrase")
    field.clear()
    field.send_keys(passphrase)
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=create-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "created"), "registered as a patient"), timeout=60)
    did = browser.find_element(By.ID, "created").text.split("patient: ")[1].split()[0]
    # She saves the backup as a person would: the download link.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.find_element(By.CSS_SELECTOR, "#created a[download]").click()
    saved = downloads / "careledger-key-backup.json"
    wait_for(browser, lambda _: saved.exists() and saved.stat().st_size > 0)
    sealed = json.loads(saved.read_text())
    assert sealed["format"] == "careledger-key-backup/v1" and sealed["iterations"] >= 600000
    key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(sealed["salt"]), iterations=sealed["iterations"]).derive(passphrase.encode())
    key_file = AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), b"careledger-key-backup/v1")
    (tmp_path / "new.key").write_bytes(key_file)
    assert cli("key", "show", "--key", str(tmp_path / "new.key")).strip() == did
    assert json.loads(cli("principal", "show", "--node", url, did))["role"] == "patient"
    assert console_problems(browser) == []

    (tmp_path / "backup.json").write_text(json.dumps(sealed))
    # The app kept nothing (the keys were not kept): a reload asks again.
    browser.get(url + "/app/")
    heading(browser, "Welcome")
    browser.find_element(By.NAME, "backupfile").send_keys(str(tmp_path / "backup.json"))
    browser.find_element(By.NAME, "backuppassphrase").send_keys("not the passphrase")
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=restore-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "form[aria-labelledby=restore-title]"), "wrong passphrase"), timeout=60)
    pw = browser.find_element(By.NAME, "backuppassphrase")
    pw.clear()
    pw.send_keys(passphrase)
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=restore-title] button[type=submit]").click()
    heading(browser, "My health record")
    assert did[:14] in browser.find_element(By.ID, "who").text
    storage_is_clean(browser)
    accessible(browser)
    assert console_problems(browser) == []


def test_the_pharmacist_scans_and_dispenses(node, browser):
    """The README's packs at the pharmacy counter: verified (green), batch mismatch (red, EMVS A68),
    dispensed, then already dispensed (red); a scanner's element string with the GS character works."""
    url, data = node
    keys = f"{data}/keys"
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    cli("supply", "product", "--node", url, "--key", f"{keys}/pharma-co.key", "--gtin", "09506000100012", "--name", "Amoxicillin 500 mg")
    cli("epcis", "ingest", "--node", url, "--key", f"{keys}/pharma-co.key", os.path.join(root, "examples/supply/commission.jsonld"))
    cli("epcis", "ingest", "--node", url, "--key", f"{keys}/pharmacy.key", os.path.join(root, "examples/supply/receive.jsonld"))
    sign_in(browser, url, f"{keys}/pharmacy.key")
    heading(browser, "Pharmacy")
    accessible(browser)

    def scan(text):
        box = browser.find_element(By.NAME, "scan")
        box.clear()
        box.send_keys(text)
        browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=scan-title] button[type=submit]").click()
        wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#scan-result .verdict")))
        return browser.find_element(By.ID, "scan-result").text

    good = "(01)09506000100012(17)300630(10)LOT42(21)SN1001"
    answer = scan(good)
    assert answer.startswith("Verified") and "Amoxicillin 500 mg" in answer and "LOT42" in answer, answer
    accessible(browser)
    answer = scan("(01)09506000100012(17)300630(10)LOT41(21)SN1001")
    assert answer.startswith("Do not dispense") and "A68" in answer and "batch" in answer, answer
    assert scan("01095060001000121730063010LOT42<GS>21SN1002").startswith("Verified"), "a scanner's element string"
    scan(good)
    browser.find_element(By.CSS_SELECTOR, "form[aria-label=Dispense] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "scan-result"), "Dispensed"))
    answer = scan(good)
    assert answer.startswith("Do not dispense") and "Already dispensed" in answer, answer
    assert console_problems(browser) == []

    # A pack dispensed to Alice (who consents to the pharmacy), then recalled: her medicines say so.
    alice = did(data, "alice")
    cli("consent", "grant", "--node", url, "--key", f"{keys}/alice.key", "--grantee", did(data, "pharmacy"))
    assert scan("(01)09506000100012(17)300630(10)LOT42(21)SN1003").startswith("Verified")
    browser.find_element(By.NAME, "patient").send_keys(alice)
    browser.find_element(By.CSS_SELECTOR, "form[aria-label=Dispense] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "scan-result"), "Dispensed"))
    cli("supply", "recall", "--node", url, "--key", f"{keys}/regulator.key", "--gtin", "09506000100012", "--lot", "LOT42", "--reason", "sterility")
    # The regulator's report of the lot: recalled, every pack with its status and holder.
    sign_in(browser, url, f"{keys}/regulator.key")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "nav a[href='#/recalls']")))
    browser.execute_script("location.hash = '#/recalls'")
    heading(browser, "Recall reports")
    browser.find_element(By.NAME, "gtin").send_keys("09506000100012")
    browser.find_element(By.NAME, "lot").send_keys("LOT42")
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=report-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "report"), "recalled"))
    report = browser.find_element(By.ID, "report").text
    assert "not recalled" not in report and "3 packs" in report, report
    accessible(browser)
    sign_in(browser, url, f"{keys}/alice.key")
    heading(browser, "My health record")
    browser.execute_script("location.hash = '#/medicines'")
    heading(browser, "My medicines")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "li[data-medicine]")))
    medicine = browser.find_element(By.CSS_SELECTOR, "li[data-medicine]").text
    assert "recalled" in medicine and "sterility" in medicine, medicine
    accessible(browser)
    assert console_problems(browser) == []


def test_a_clinician_reads_writes_and_breaks_the_glass(alice_with_records, browser):
    """Dr Bob opens Alice's record under her consent and writes an Observation through the form (checked
    before it is sent; sealed in the browser); Dr Carol, without consent, is told so, then breaks the
    glass with a reason and sees the record under a banner."""
    url, data = alice_with_records
    keys = f"{data}/keys"
    alice = did(data, "alice")
    sign_in(browser, url, f"{keys}/dr-bob.key")
    heading(browser, "Patients")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "section[aria-labelledby=mine-title]"), alice[:14]))
    accessible(browser)
    browser.find_element(By.NAME, "patient").send_keys(alice)
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=find-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "Asthma"))
    write = "form[aria-labelledby=write-title]"
    browser.find_element(By.CSS_SELECTOR, f"{write} button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, write), "Say what it is."))
    browser.find_element(By.NAME, "what").send_keys("Heart rate")
    browser.find_element(By.NAME, "value").send_keys("seventy")
    browser.find_element(By.NAME, "unit").send_keys("/min")
    browser.find_element(By.CSS_SELECTOR, f"{write} button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, write), "A number"))
    value = browser.find_element(By.NAME, "value")
    value.clear()
    value.send_keys("72")
    # A date the form leaves to the node: its FHIR validator ($validate) refuses it, in words beside the field.
    versions_before = len(json.loads(cli("patient", "timeline", "--node", url, "--key", f"{keys}/alice.key", "--json"))["records"])
    when = browser.find_element(By.NAME, "when")
    when.send_keys("7 December")
    browser.find_element(By.CSS_SELECTOR, f"{write} button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, f"{when.get_attribute('id')}-error"), "7 December is not a FHIR date/dateTime"))
    assert when.get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.NAME, "what").get_attribute("aria-invalid") == "false", "the only issue is the date"
    assert len(json.loads(cli("patient", "timeline", "--node", url, "--key", f"{keys}/alice.key", "--json"))["records"]) == versions_before, "nothing written"
    when.clear()
    when.send_keys("2026-12-07")
    browser.find_element(By.CSS_SELECTOR, f"{write} button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "Observation written"))
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "72 /min"))
    # Alice reads it with the CLI: it was sealed for her in Dr Bob's browser.
    timeline = run("patient", "timeline", "--node", url, "--key", f"{keys}/alice.key")
    assert timeline.returncode == 0 and "Heart rate" in timeline.stdout, timeline.stderr
    accessible(browser)
    assert console_problems(browser) == []

    # Hospital A's lab reports a blood count Dr Bob ordered: it waits for his endorsement, which he gives in the app.
    hospital, bob = did(data, "hospital-a"), did(data, "dr-bob")
    report = f"{data}/cbc-1.json"
    with open(report, "w") as f:
        json.dump({"resourceType": "DiagnosticReport", "id": "cbc-1", "status": "final", "code": {"text": "Full blood count"}, "conclusion": "Normal"}, f)
    cli("record", "put", "--node", url, "--key", f"{keys}/hospital-a.key", "--patient", alice, "--file", report, "--custodian", hospital,
        "--party", f"performer={hospital}", "--party", f"requester={bob}")
    browser.execute_script("location.hash = '#/endorsements'")
    heading(browser, "Waiting for my endorsement")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "li[data-endorse='cbc-1/1'] button"))).click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "now current"))
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Nothing waits for your endorsement"))
    history = json.loads(cli("record", "history", "--node", url, "--key", f"{keys}/alice.key", "--id", "cbc-1", "--json"))
    assert history["versions"][0]["status"] == "current", history
    accessible(browser)

    sign_in(browser, url, f"{keys}/dr-carol.key")
    heading(browser, "Patients")
    browser.find_element(By.NAME, "patient").send_keys(alice)
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=find-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "No consent"))
    browser.find_element(By.NAME, "reason").send_keys("unconscious in the emergency room")
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=find-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "Break-the-glass"))
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "Asthma"))
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "break-glass-countdown"), "The window closes in"))
    first = browser.find_element(By.ID, "break-glass-countdown").text
    wait_for(browser, lambda d: d.find_element(By.ID, "break-glass-countdown").text != first, timeout=5)
    accessible(browser)
    assert console_problems(browser, refusals=(403,)) == [], "only the refusal the test provoked"


def test_a_clinician_works_through_her_organisations_node(alice_with_records, browser):
    """The node acts for Hospital A: Dr Bob ticks "through my organisation's node", reads Alice's record as
    the node opens it (FHIR search) and writes an Observation the node seals and commits on his behalf."""
    url, data = alice_with_records
    keys = f"{data}/keys"
    alice, bob, hospital = did(data, "alice"), did(data, "dr-bob"), did(data, "hospital-a")
    sign_in(browser, url, f"{keys}/dr-bob.key")
    heading(browser, "Patients")
    browser.find_element(By.NAME, "patient").send_keys(alice)
    browser.find_element(By.ID, "through-node").click()
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=find-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "Opened by your organisation's node"))
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "Asthma"))
    accessible(browser)
    write = "form[aria-labelledby=write-title]"
    browser.find_element(By.NAME, "what").send_keys("Body weight")
    browser.find_element(By.NAME, "value").send_keys("70")
    browser.find_element(By.NAME, "unit").send_keys("kg")
    browser.find_element(By.CSS_SELECTOR, f"{write} button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "through your organisation's node"))
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "patient-record"), "70 kg"))
    # Alice reads it with her own key; on chain the hospital wrote it on Dr Bob's behalf.
    timeline = json.loads(cli("patient", "timeline", "--node", url, "--key", f"{keys}/alice.key", "--json"))
    weights = [r for r in timeline["records"] if r.get("code", {}).get("text") == "Body weight"]
    assert len(weights) == 1, timeline
    history = json.loads(cli("record", "history", "--node", url, "--key", f"{keys}/alice.key", "--id", weights[0]["id"], "--json"))
    assert history["versions"][0]["author"] == hospital and history["versions"][0]["onBehalfOf"] == bob, history
    assert console_problems(browser) == []


def test_live_news_and_erasure(alice_with_records, browser, tmp_path):
    """While Alice reads her record, Dr Bob writes another: she is told at once (server-sent events,
    the token in a header). She erases it, confirming, and saves the signed erasure receipt; the record
    is gone for everyone (the CLI's read exits 1)."""
    url, data = alice_with_records
    keys = f"{data}/keys"
    sign_in(browser, url, f"{keys}/alice.key")
    heading(browser, "My health record")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Asthma"))
    path = tmp_path / "erase-me.json"
    path.write_text(json.dumps({"resourceType": "Procedure", "id": "erase-me", "status": "completed", "code": {"text": "Appendectomy"}}))
    cli("record", "put", "--node", url, "--key", f"{keys}/dr-bob.key", "--patient", did(data, "alice"), "--file", str(path), "--custodian", did(data, "hospital-a"))
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "A new record was added to your file: Procedure"))
    browser.execute_script("location.hash = '#/consents'")
    heading(browser, "Who may see")
    browser.execute_script("location.hash = '#/timeline'")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "button[data-erase=erase-me]")))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.find_element(By.CSS_SELECTOR, "button[data-erase=erase-me]").click()
    wait_for(browser, EC.alert_is_present()).accept()
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "a[download='erasure-erase-me.json']"))).click()
    saved = downloads / "erasure-erase-me.json"
    wait_for(browser, lambda _: saved.exists() and saved.stat().st_size > 0)
    saved_receipt = json.loads(saved.read_text())
    receipt = saved_receipt["receipt"]
    assert receipt["type"] == "careledger.erasure-receipt" and receipt["recordId"] == "erase-me" and receipt["erasedAtHeight"] > 0
    # Signed by the node (Ed25519 over the receipt's canonical JSON), checked here with `cryptography`.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = 0
    for ch in saved_receipt["signer"][len("did:key:z"):]:
        n = n * 58 + alphabet.index(ch)
    public = n.to_bytes(34, "big")[2:]
    canonical = json.dumps(receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    import base64
    Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(saved_receipt["signature"]), canonical)
    assert run("record", "get", "--node", url, "--key", f"{keys}/alice.key", "--id", "erase-me").returncode == 1
    accessible(browser)
    assert console_problems(browser) == []


def test_the_privacy_officer_reviews_an_emergency_read(alice_with_records, browser):
    """Dr Carol broke the glass (the clinician test); her organisation reviews it in the app."""
    url, data = alice_with_records
    keys = f"{data}/keys"
    sign_in(browser, url, f"{keys}/hospital-b.key")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "nav a[href='#/reviews']")))
    browser.execute_script("location.hash = '#/reviews'")
    heading(browser, "Break-the-glass reviews")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "unconscious in the emergency room"))
    accessible(browser)
    item = browser.find_element(By.CSS_SELECTOR, "li[data-review]")
    item.find_element(By.CSS_SELECTOR, "input").send_keys("confirmed with the ward")
    item.find_element(By.XPATH, ".//button[text()='Justified']").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "Recorded as justified"))
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Nothing waits for review"))
    listed = run("break-glass", "list", "--node", url, "--key", f"{keys}/hospital-b.key", "--all", "--json")
    assert listed.returncode == 0 and "justified" in listed.stdout and "confirmed with the ward" in listed.stdout, listed.stdout + listed.stderr
    assert console_problems(browser) == []


def test_a_guardian_approves_a_recovery(alice_with_records, browser, tmp_path):
    """Alice names Dr Bob her guardian in the app. She loses her device: a new browser makes new keys and
    asks; Dr Bob, in his browser, approves the request whose check code she reads out; her new browser is
    then signed in as Alice with its own keys, and her old key file is refused. (Last of Alice's tests.)"""
    url, data = alice_with_records
    keys = f"{data}/keys"
    alice = did(data, "alice")
    sign_in(browser, url, f"{keys}/alice.key")
    heading(browser, "My health record")
    browser.execute_script("location.hash = '#/guardians'")
    heading(browser, "Guardians")
    accessible(browser)
    browser.find_element(By.NAME, "guardians").send_keys(did(data, "dr-bob"))
    threshold = browser.find_element(By.NAME, "threshold")
    threshold.clear()
    threshold.send_keys("1")
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=setup-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "Saved: 1 of 1"))

    device = open_browser(browser.kind)
    try:
        device.get(url + "/app/")
        heading(device, "Welcome")
        device.find_element(By.CSS_SELECTOR, "a[href='#/recover']").click()
        heading(device, "Recover my keys")
        accessible(device)
        device.find_element(By.NAME, "recoverdid").send_keys(alice)
        device.find_element(By.NAME, "recoverpassphrase").send_keys("a new phone, a new passphrase")
        device.find_element(By.CSS_SELECTOR, "form[aria-labelledby=recover-title] button[type=submit]").click()
        code = wait_for(device, EC.presence_of_element_located((By.ID, "check-code"))).text
        device.find_element(By.XPATH, "//button[text()='Have they approved?']").click()
        wait_for(device, EC.text_to_be_present_in_element((By.ID, "recovery-state"), "Not yet"))

        sign_in(browser, url, f"{keys}/dr-bob.key")
        heading(browser, "Patients")
        browser.execute_script("location.hash = '#/guardians'")
        heading(browser, "Guardians")
        browser.find_element(By.NAME, "guarded").send_keys(alice)
        browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=approve-title] button[type=submit]").click()
        wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, f"button[data-approve='{code}']"))).click()
        wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "their new device is now them"))

        device.find_element(By.XPATH, "//button[text()='Have they approved?']").click()
        heading(device, "My health record")
        assert alice[:14] in device.find_element(By.ID, "who").text
        wait_for(device, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Asthma"))
        assert console_problems(device, refusals=(403,)) == []
    finally:
        device.quit()
    assert run("access-log", "--node", url, "--key", f"{keys}/alice.key").returncode == 1, "the old key is retired"
    assert console_problems(browser) == []


def test_a_patient_replaces_her_keys_and_two_organisations_freeze_them(node, browser, tmp_path):
    """Paula replaces her keys in the app: her record opens with the new keys, the old key file is refused,
    her key history shows both. Then two organisations freeze her key (the first only proposes), which
    stops her signing, and lift the freeze."""
    url, data = node
    keys = f"{data}/keys"
    paula_key = str(tmp_path / "paula.key")
    cli("key", "generate", "--out", paula_key)
    paula = cli("key", "show", "--key", paula_key).strip()
    cli("patient", "register", "--node", url, "--key", paula_key)
    record = tmp_path / "bp-1.json"
    record.write_text(json.dumps({"resourceType": "Observation", "id": "bp-1", "status": "final", "code": {"text": "Blood pressure"},
                                  "valueQuantity": {"value": 120, "unit": "mmHg"}}))
    cli("record", "put", "--node", url, "--key", paula_key, "--patient", paula, "--file", str(record), "--custodian", did(data, "hospital-a"))
    sign_in(browser, url, paula_key)
    heading(browser, "My health record")
    browser.execute_script("location.hash = '#/keys'")
    heading(browser, "My keys")
    accessible(browser)
    browser.find_element(By.NAME, "rotatepassphrase").send_keys("my brand new passphrase")
    browser.find_element(By.NAME, "rotatereason").send_keys("phone lost on the train")
    browser.find_element(By.CSS_SELECTOR, "form[aria-labelledby=rotate-title] button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "rotated"), "Your keys were replaced"), timeout=60)
    assert run("access-log", "--node", url, "--key", paula_key).returncode == 1, "the old key file is refused"
    shown = json.loads(cli("principal", "show", "--node", url, paula))
    assert len(shown["keyHistory"]) == 2 and shown["keyHistory"][1]["reason"] == "phone lost on the train"
    browser.execute_script("location.hash = '#/timeline'")
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "120 mmHg"))
    assert console_problems(browser) == []

    def organisation(name, act, **fields):
        sign_in(browser, url, f"{keys}/{name}.key")
        wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "nav a[href='#/freeze']")))
        browser.execute_script("location.hash = '#/freeze'")
        heading(browser, "Suspected key theft")
        for field_name, value in fields.items():
            browser.find_element(By.NAME, field_name).send_keys(value)
        browser.find_element(By.CSS_SELECTOR, f"form[aria-labelledby={act}-title] button[type=submit]").click()
        wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, f"#{act}-result p")))
        return browser.find_element(By.ID, f"{act}-result").text

    assert organisation("hospital-a", "freeze", freezesubject=paula, freezereason="seen in person").startswith("Proposed")
    accessible(browser)
    assert organisation("hospital-b", "freeze", freezesubject=paula, freezereason="seen in person") == "Done: frozen."
    shown = json.loads(cli("principal", "show", "--node", url, paula))
    assert shown["frozen"]["by"] == [did(data, "hospital-a"), did(data, "hospital-b")]
    assert organisation("hospital-b", "lift", liftsubject=paula).startswith("Proposed")
    assert organisation("hospital-a", "lift", liftsubject=paula) == "Done: unfrozen."
    assert "frozen" not in json.loads(cli("principal", "show", "--node", url, paula))
    assert console_problems(browser) == []


def test_keyboard_alone(alice_with_records, browser):
    """A whole flow by keyboard alone, with visible focus: to a checked receipt, then back through the
    navigation to the skip link."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    url, data = alice_with_records
    digest = hashlib.sha256(b"keyboard only").hexdigest()
    submitted = run("tx", "submit", "--node", url, "--key", f"{data}/keys/hospital-b.key", "--contract", "notary", "--action", "record",
                    "--payload", json.dumps({"hash": digest, "label": "keys"}), "--wait", "--json")
    tx = json.loads(submitted.stdout)["id"]
    browser.get(url + "/app/#/ledger")
    heading(browser, "Ledger")
    # The app moves focus to the page's content after each navigation; Tab from there reaches the field.
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    for _ in range(10):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        if browser.switch_to.active_element.get_attribute("name") == "transaction":
            break
    field = browser.switch_to.active_element
    assert field.get_attribute("name") == "transaction"
    assert field.value_of_css_property("outline-style") == "solid", "focus is visible"
    ActionChains(browser).send_keys(tx).send_keys(Keys.ENTER).perform()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "verdict"), "Verified"))
    for _ in range(15):
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        if browser.switch_to.active_element.text == "Skip to content":
            break
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.value_of_css_property("outline-style") == "solid"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    assert console_problems(browser) == []


def test_a_new_patient_by_keyboard_alone(node, browser):
    """From the welcome page to a grant, by keyboard alone, focus always visible: she creates her
    identity (the passphrase, Enter), continues to her record, goes to "Who may see" through the
    navigation and grants Hospital A."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    url, data = node
    hospital = did(data, "hospital-a")

    def press(*keys):
        chain = ActionChains(browser)
        for key in keys:
            chain.send_keys(key)
        chain.perform()

    def tab_to(matches, limit=40):
        for _ in range(limit):
            press(Keys.TAB)
            active = browser.switch_to.active_element
            if matches(active):
                assert active.value_of_css_property("outline-style") == "solid", "focus is visible"
                return active
        raise AssertionError("not reached by Tab")

    browser.get(url + "/app/")
    heading(browser, "Welcome")
    tab_to(lambda e: e.get_attribute("name") == "newpassphrase")
    press("a passphrase of mine, long enough", Keys.ENTER)
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "created"), "registered as a patient"), timeout=60)
    tab_to(lambda e: e.text == "Continue")
    press(Keys.ENTER)
    heading(browser, "My health record")
    tab_to(lambda e: (e.get_attribute("href") or "").endswith("#/consents"))
    press(Keys.ENTER)
    heading(browser, "Who may see what")
    tab_to(lambda e: e.get_attribute("name") == "grantee")
    press(hospital)
    tab_to(lambda e: e.text == "Grant")
    press(Keys.ENTER)
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main .consents"), "Hospital A may see all your records for treatment"))
    assert console_problems(browser) == []


def test_claims_for_the_patient_and_the_insurer(node, browser):
    """Hospital A's claim for Alice, adjudicated by the insurer's node: Alice reads it in plain words
    (what was charged, allowed, what she pays and why, what the plan pays); the insurer finds it in its
    work queue and records the payment."""
    url, data = node
    keys = f"{data}/keys"
    repo = os.path.join(os.path.dirname(__file__), "..", "..")
    # A patient of her own (other tests replace Alice's keys).
    alice_key = f"{data}/claims-patient.key"
    if not os.path.exists(alice_key):
        cli("key", "generate", "--out", alice_key)
        cli("patient", "register", "--node", url, "--key", alice_key)
    alice = cli("key", "show", "--key", alice_key).strip()
    hospital, insurer = did(data, "hospital-a"), did(data, "insurer")
    policy = json.load(open(os.path.join(repo, "examples", "claims", "policy.json")))
    policy["members"][0]["patient"] = alice
    policy["deductible"] = 5000
    policy_file, claim_file = f"{data}/claims-policy.json", f"{data}/claim.json"
    with open(policy_file, "w") as f:
        json.dump(policy, f)
    cli("policy", "publish", "--node", url, "--key", f"{keys}/insurer.key", policy_file)
    cli("consent", "grant", "--node", url, "--key", alice_key, "--grantee", hospital)
    cli("consent", "grant", "--node", url, "--key", alice_key, "--grantee", insurer, "--purpose", "payment", "--categories", "financial")
    claim = json.load(open(os.path.join(repo, "examples", "claims", "claims.json")))["entry"][0]["resource"]
    claim["id"] = "visit-app"
    claim["patient"]["identifier"]["value"] = alice
    claim["provider"]["identifier"]["value"] = hospital
    with open(claim_file, "w") as f:
        json.dump(claim, f)
    cli("claim", "submit", "--node", url, "--key", f"{keys}/hospital-a.key", "--insurer", insurer, "--plan", "gold-2027", claim_file)

    sign_in(browser, url, alice_key)
    heading(browser, "My health record")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "nav a[href='#/my-claims']"))).click()
    heading(browser, "My claims")
    # The insurer's node decides it as it arrives; the page shows it once decided.
    for _ in range(100):
        text = browser.find_element(By.CSS_SELECTOR, "main").text
        if "the plan pays" in text:
            break
        time.sleep(0.1)
        browser.execute_script("location.hash = '#/my-claims/' + Date.now()")
    card = browser.find_element(By.CSS_SELECTOR, "section[data-claim='visit-app']").text
    assert "Claim visit-app from Hospital A" in card and "decided" in card, card
    assert "On 2027-02-01: 150.00 EUR charged; the plan allows 120.00 EUR (the charge is more than the plan's fee for it); you pay 84.00 EUR" in card, card
    # 120.00 allowed: 50.00 deductible, 25.00 copay, 20 % of the 45.00 left; the plan pays the remaining 36.00.
    assert "(50.00 EUR your deductible, 25.00 EUR your copay, 9.00 EUR your coinsurance share); the plan pays 36.00 EUR." in card, card
    assert "The plan pays 60.00 EUR in all" in card, card
    accessible(browser)
    assert console_problems(browser) == []

    sign_in(browser, url, f"{keys}/insurer.key")
    wait_for(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "nav a[href='#/claims']")))
    browser.execute_script("location.hash = '#/claims'")
    heading(browser, "Claims")
    row = "section[aria-labelledby=queue-title] tr[data-claim='visit-app']"
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, row), "decided"))
    accessible(browser)
    browser.find_element(By.NAME, "reference-visit-app").send_keys("SEPA-2027-0042")
    browser.find_element(By.CSS_SELECTOR, f"{row} button[type=submit]").click()
    wait_for(browser, EC.text_to_be_present_in_element((By.ID, "notices"), "Claim visit-app paid"))
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, row), "paid"))
    status = json.loads(cli("claim", "status", "--node", url, "--key", alice_key, "visit-app", "--json"))
    assert status["status"] == "paid" and status["paid"] == status["adjudication"]["benefit"] > 0, status
    assert console_problems(browser) == []


def test_a_phone_sized_screen(alice_with_records, browser):
    """On a phone-sized screen — 360 CSS pixels in Chromium; in Firefox its narrowest headless window,
    500 — every page a patient visits fits the screen (nothing wider than the viewport), the navigation
    wraps, and axe finds nothing serious."""
    url, data = alice_with_records
    # A patient of her own (another test replaces Alice's keys), with a record Dr Bob wrote.
    patient_key = f"{data}/phone-patient.key"
    if not os.path.exists(patient_key):
        cli("key", "generate", "--out", patient_key)
        cli("patient", "register", "--node", url, "--key", patient_key)
        patient = cli("key", "show", "--key", patient_key).strip()
        cli("consent", "grant", "--node", url, "--key", patient_key, "--grantee", did(data, "dr-bob"))
        with open(f"{data}/phone-asthma.json", "w") as f:
            json.dump({"resourceType": "Condition", "id": "phone-asthma", "code": {"text": "Asthma"}, "clinicalStatus": {"text": "active"}}, f)
        cli("record", "put", "--node", url, "--key", f"{data}/keys/dr-bob.key", "--patient", patient, "--file", f"{data}/phone-asthma.json",
            "--custodian", did(data, "hospital-a"))
    target = 500 if browser.kind == "firefox" else 360
    browser.set_window_size(target, 780)
    sign_in(browser, url, patient_key)
    heading(browser, "My health record")
    width = browser.execute_script("return window.innerWidth")
    assert width == target, f"the window is {width} CSS pixels wide"
    wait_for(browser, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Asthma"))
    for page, title in [("timeline", "My health record"), ("consents", "Who may see what"), ("access-log", "Who looked"), ("ledger", "Ledger")]:
        browser.execute_script(f"location.hash = '#/{page}'")
        heading(browser, title)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page}: {overflow} px wider than the screen"
        accessible(browser)
    nav = browser.find_element(By.CSS_SELECTOR, "nav").rect
    assert nav["width"] <= width, nav
    assert console_problems(browser) == []
