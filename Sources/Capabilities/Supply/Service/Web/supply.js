// The pharmacist's scan box: a keyboard-wedge scanner's input (GS1 element string with the GS
// character, the bracketed form, or a Digital Link URI; "<GS>" typed by hand counts as the GS character),
// or the camera where the browser has BarcodeDetector. The answer is large: green to dispense, red
// with the reason in words and the EMVS alert code otherwise.
import { h, field, setError, mount, notify, badge, when } from "/app/js/ui.js";
import { explain } from "/app/js/api.js";
import { openReads } from "/app/js/sealing.js";

const WORDS = {
  verified: "Genuine, in the supply chain: you may dispense it.",
  unknown_product: "Unknown product: no manufacturer registered this GTIN. Possible counterfeit.",
  unknown_serial: "Unknown serial number: the manufacturer never made this pack. Possible counterfeit.",
  batch_mismatch: "The batch printed on the pack is not the batch this serial number was made in. Possible counterfeit.",
  expiry_mismatch: "The expiry date printed on the pack is not the manufacturer's.",
  expired: "Expired.",
  recalled: "Recalled by the manufacturer or the regulator.",
  already_decommissioned: "Already dispensed or taken out of the supply chain.",
  pack_locked: "Locked while it is being investigated.",
  suspect: "Reported suspect by another party.",
};

function verdict(result, dispensed = false) {
  const ok = result.verified === true;
  const alert = result.emvs?.alert;
  const what = [result.product, result.gtin && `GTIN ${result.gtin}`, result.lot && `lot ${result.lot}`, result.expiry && `expires ${result.expiry}`].filter(Boolean).join(" · ");
  return [
    h("p", { class: `verdict ${ok ? "ok" : "bad"}` }, dispensed ? "Dispensed" : ok ? "Verified" : "Do not dispense"),
    h("p", {}, dispensed ? "Recorded on the ledger: this pack cannot be dispensed again." : WORDS[result.outcome] ?? result.outcome),
    what ? h("p", { class: "meta" }, what) : null,
    alert ? h("p", {}, `EMVS alert ${alert}`, result.emvs?.returnCode ? ` (${result.emvs.returnCode})` : "") : null,
    result.detail ? h("p", { class: "meta" }, result.detail) : null,
  ];
}

async function cameraScan(input, submit) {
  const detector = new window.BarcodeDetector({ formats: ["data_matrix", "qr_code"] });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  const video = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": "Camera" });
  video.srcObject = stream;
  input.after(video);
  try {
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const codes = video.readyState >= 2 ? await detector.detect(video) : [];
      if (codes.length) {
        input.value = codes[0].rawValue;
        submit();
        return;
      }
    }
    notify("No code seen: type the code instead.", "bad");
  } finally {
    stream.getTracks().forEach((t) => t.stop());
    video.remove();
  }
}

async function scan(main, { client }) {
  const input = h("input", { type: "text", name: "scan", autocomplete: "off", spellcheck: "false", autofocus: true });
  const patient = h("input", { type: "text", name: "patient", autocomplete: "off", spellcheck: "false" });
  const answer = h("div", { id: "scan-result", role: "status", "aria-live": "assertive" });
  let last = null;
  const text = () => input.value.replace(/<GS>/gi, "\u001d").trim();
  async function check() {
    setError(input, "");
    mount(answer);
    if (!text()) return setError(input, "Scan the pack's 2D code, or type what is printed under it.");
    try {
      last = await client.request("POST", "/v1/supply/verify", { scan: text() });
      mount(answer, verdict(last), last.verified ? dispenseForm : null);
    } catch (error) {
      setError(input, explain(error));
    }
  }
  const form = h("form", { class: "card", "aria-labelledby": "scan-title" },
    h("h2", { id: "scan-title" }, "Verify a pack"),
    field("Scan", input, "A scanner types here; the bracketed form (01)…(21)… and GS1 Digital Link URIs work too"),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Verify"),
      "BarcodeDetector" in window ? h("button", { type: "button", class: "secondary", onclick: () => cameraScan(input, check) }, "Use the camera") : null));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    check();
  });
  const dispenseForm = h("form", { class: "row", "aria-label": "Dispense" },
    field("Patient (did, optional)", patient),
    h("button", { type: "submit" }, "Dispense"));
  dispenseForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(patient, "");
    const body = { scan: text(), dispense: true };
    if (patient.value.trim()) body.patient = patient.value.trim();
    try {
      const result = await client.request("POST", "/v1/supply/verify", body);
      mount(answer, verdict(result, result.verified === true));
      input.value = "";
      input.focus();
    } catch (error) {
      setError(patient, explain(error));
    }
  });
  mount(main, h("h1", {}, "Pharmacy"), form, answer);
  input.focus();
}

async function alerts(main, { client }) {
  const list = (await client.get("/v1/supply/alerts")).alerts ?? [];
  mount(main, h("h1", {}, "Supply alerts"),
    list.length ? h("table", {}, h("caption", { class: "meta" }, "Recalls, suspect packs and failed verifications seen by the supply chain"),
      h("thead", {}, h("tr", {}, ["When", "Alert", "Pack", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map((a) => h("tr", {}, h("td", {}, a.time ? new Date(a.time).toLocaleString() : ""), h("td", {}, a.rule ?? a.type ?? ""),
        h("td", {}, [a.gtin, a.lot, a.serial].filter(Boolean).join(" · ")), h("td", {}, a.detail ?? a.reason ?? "")))))
      : h("p", {}, "No alerts."));
}

/** The patient's medicines (her MedicationRequest and MedicationDispense records, decrypted here), each
 *  dispensed pack with its recall status (the recall notices the supply chain sent her). */
async function medicines(main, { client }) {
  const [timeline, notices] = await Promise.all([client.get(`/v1/patients/${client.did}/records`), client.get("/v1/supply/notices")]);
  const recalled = new Map((notices.notices ?? []).map((n) => [n.recordId, n]));
  const opened = (await openReads((timeline.records ?? []).filter((r) => r.resourceType === "MedicationDispense" || r.resourceType === "MedicationRequest"), client.identity))
    .sort((a, b) => b.read.time - a.read.time);
  const name = (r) => r.medicationCodeableConcept?.text ?? r.medicationCodeableConcept?.coding?.[0]?.display ?? "A medicine";
  mount(main, h("h1", {}, "My medicines"),
    opened.length ? h("ul", { class: "plain" }, opened.map(({ read, resource }) => {
      const notice = recalled.get(read.recordId);
      const status = read.resourceType === "MedicationRequest" ? badge("prescribed") : notice ? badge("recalled", "bad") : badge("no recall", "ok");
      return h("li", { class: "card", "data-medicine": read.recordId },
        h("h3", {}, name(resource), " ", status),
        notice ? h("p", { class: "error" }, `Recalled${notice.reason ? `: ${notice.reason}` : ""}. Ask your pharmacist or doctor before taking more.`) : null,
        h("p", { class: "meta" }, `${read.resourceType === "MedicationDispense" ? "Dispensed" : "Prescribed"} ${when(read.time)}`));
    })) : h("p", {}, "No medicines on your record."));
}

/** For the product's MAH and regulators: where every pack of a lot is, and whether the lot is recalled. */
async function recallReport(main, { client }) {
  const gtin = h("input", { type: "text", name: "gtin", inputmode: "numeric", autocomplete: "off" });
  const lot = h("input", { type: "text", name: "lot", autocomplete: "off" });
  const out = h("div", { id: "report" });
  const form = h("form", { class: "card", "aria-labelledby": "report-title", novalidate: true },
    h("h2", { id: "report-title" }, "Where is a lot?"), field("GTIN", gtin, "14 digits"), field("Lot", lot),
    h("button", { type: "submit" }, "Report"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(gtin, "");
    setError(lot, "");
    if (!/^\d{14}$/.test(gtin.value.trim())) return setError(gtin, "A GTIN is 14 digits.");
    if (!lot.value.trim()) return setError(lot, "Give the lot.");
    try {
      const r = await client.get(`/v1/supply/recalls/report?gtin=${encodeURIComponent(gtin.value.trim())}&lot=${encodeURIComponent(lot.value.trim())}`);
      mount(out, h("p", {}, r.recalled ? badge("recalled", "bad") : badge("not recalled", "ok"), ` ${r.packCount} packs, held by ${r.holders.length} parties.`),
        h("table", {}, h("caption", { class: "meta" }, "Each pack: its status, who holds it, in whose custody"),
          h("thead", {}, h("tr", {}, ["Pack", "Status", "Holder", "Custody"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, (r.packs ?? []).map((p) => h("tr", {}, h("td", {}, p.item ?? ""), h("td", {}, p.status ?? ""), h("td", {}, p.holder ?? ""), h("td", {}, p.custody ?? ""))))));
    } catch (error) {
      setError(gtin, explain(error));
    }
  });
  mount(main, h("h1", {}, "Recall reports"), form, out);
}

const PAGES = { scan, "supply-alerts": alerts, medicines, recalls: recallReport };

export async function render(main, context) {
  return PAGES[context.page.id](main, context);
}
