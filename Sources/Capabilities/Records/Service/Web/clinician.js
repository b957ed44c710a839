// The clinician's pages: a patient's record (under her consent, or by breaking the glass with a stated
// reason, the open window shown with its countdown), and writing an Observation or a Condition through
// a form checked in the browser and by the node's FHIR validator; sealed in the browser for the readers
// her consent names, or, on a node acting for her organisation, opened and sealed by that node.
import { h, field, setError, mount, notify, when, shortDID } from "/app/js/ui.js";
import { ApiError, explain, getPublic } from "/app/js/api.js";
import { hex, fromBase64 } from "/app/js/bytes.js";
import { seal, openReads, upload } from "/app/js/sealing.js";
import { resourceCard } from "./fhir-render.js";

const DID = /^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$/;

/** Counts the break-the-glass window down, once a second, while the element is on the page. */
function tick(element, until) {
  const left = until - Date.now();
  if (left <= 0) {
    element.textContent = "The emergency window has closed.";
    return;
  }
  const minutes = Math.floor(left / 60000), seconds = Math.floor((left % 60000) / 1000);
  element.textContent = `The window closes in ${minutes} min ${String(seconds).padStart(2, "0")} s.`;
  if (element.isConnected || !element.dataset.started) {
    element.dataset.started = "1";
    setTimeout(() => element.isConnected && tick(element, until), 1000);
  }
}

function observationForm(client, patient, organisation, through, done) {
  const type = h("select", { name: "resourceType" }, ["Observation", "Condition"].map((t) => h("option", { value: t }, t)));
  const what = h("input", { type: "text", name: "what", autocomplete: "off" });
  const value = h("input", { type: "text", name: "value", inputmode: "decimal", autocomplete: "off" });
  const unit = h("input", { type: "text", name: "unit", autocomplete: "off" });
  const at = h("input", { type: "text", name: "when", autocomplete: "off" });
  const form = h("form", { class: "card", "aria-labelledby": "write-title", novalidate: true },
    h("h2", { id: "write-title" }, "Write to this record"),
    field("Kind", type), field("What (e.g. Heart rate, Asthma)", what),
    field("Value (Observation)", value, "A number"), field("Unit (Observation)", unit, "e.g. /min, mmHg, kg"),
    field("When (optional)", at, "A date such as 2026-12-07, or a date and time; empty means now"),
    h("button", { type: "submit" }, "Write"));
  // Which field an issue of the node's OperationOutcome is about, by its FHIRPath expression.
  const fieldOf = (issue) => {
    const path = issue.expression?.[0] ?? "";
    if (/DateTime|date/i.test(path)) return at;
    if (/\.value/.test(path)) return /unit/.test(path) ? unit : value;
    return what;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const c of [what, value, unit, at]) setError(c, "");
    const observation = type.value === "Observation";
    let bad = false;
    if (!what.value.trim()) bad = setError(what, "Say what it is.") || true;
    if (observation && !/^-?\d+(\.\d+)?$/.test(value.value.trim())) bad = setError(value, "A number, e.g. 72 or 36.6.") || true;
    if (observation && !unit.value.trim()) bad = setError(unit, "Give the unit.") || true;
    if (bad) return;
    const id = `${type.value.toLowerCase()}-${hex(crypto.getRandomValues(new Uint8Array(6)))}`;
    const moment = at.value.trim() || new Date().toISOString();
    // FHIR names her as Patient/<the did's multibase>, as the node's FHIR facade does.
    const subject = { reference: `Patient/${patient.slice("did:key:".length)}` };
    const resource = observation
      ? { resourceType: "Observation", id, status: "final", code: { text: what.value.trim() }, subject,
          effectiveDateTime: moment, valueQuantity: { value: Number(value.value), unit: unit.value.trim() } }
      : { resourceType: "Condition", id, code: { text: what.value.trim() }, subject, clinicalStatus: { text: "active" },
          onsetDateTime: moment };
    try {
      // The node's FHIR validator has the last word before anything is sealed: each issue of its
      // OperationOutcome is shown in words beside the field it names.
      const outcome = await client.request("POST", `/fhir/${type.value}/$validate`, resource);
      const problems = (outcome?.issue ?? []).filter((i) => i.severity === "error" || i.severity === "fatal");
      if (problems.length) {
        for (const issue of problems) setError(fieldOf(issue), `The record would be refused: ${issue.diagnostics}.`);
        return;
      }
      if (through()) {
        // Her organisation's node seals and commits it, on her behalf, with the organisation's keys.
        const { id: _, ...posted } = resource;
        await client.request("POST", `/fhir/${type.value}`, posted);
        notify(`${type.value} written to the record through your organisation's node.`);
        done();
        return;
      }
      const answer = await client.get(`/v1/patients/${patient}/recipients?resourceType=${type.value}&custodian=${organisation}`);
      const recipients = Object.fromEntries(answer.recipients.map((r) => [r.did, fromBase64(r.encryptionKey)]));
      const sealed = await seal(resource, id, 1, recipients);
      await upload(client, sealed.hash, sealed.blob);
      await upload(client, sealed.envelopeHash, sealed.envelope);
      await client.submit("records", "put", {
        recordId: id, patient, resourceType: type.value, version: 1, saltedHash: sealed.hash, custodian: organisation,
        recipients: sealed.recipients, keys: sealed.envelopeHash,
      });
      notify(`${type.value} written to the record.`);
      done();
    } catch (error) {
      setError(what, explain(error));
    }
  });
  return form;
}

async function patientRecord(main, context) {
  const { client, principal, params } = context;
  const did = h("input", { type: "text", name: "patient", autocomplete: "off", spellcheck: "false", value: params[0] ?? "" });
  const reason = h("input", { type: "text", name: "reason", autocomplete: "off" });
  const out = h("div", { id: "patient-record" });
  // A node acting for her organisation offers to open and seal records for her (its FHIR facade).
  const metadata = await getPublic("/fhir/metadata").catch(() => null);
  const actingFor = metadata?.implementation?.custodian?.identifier?.value;
  const throughBox = actingFor && actingFor === principal?.organisation
    ? h("input", { type: "checkbox", name: "through", id: "through-node" }) : null;
  const through = () => Boolean(throughBox?.checked);
  const form = h("form", { class: "card", "aria-labelledby": "find-title", novalidate: true },
    h("h2", { id: "find-title" }, "Open a patient's record"),
    field("Patient (did)", did),
    field("Emergency reason (break the glass)", reason, "Only without her consent, in an emergency: 10 characters or more; the patient and your privacy officer see it"),
    throughBox ? h("div", { class: "field row" }, throughBox,
      h("label", { for: "through-node" }, "Work through my organisation's node", h("span", { class: "meta" }, " (it opens and seals records for you with the organisation's keys)"))) : null,
    h("button", { type: "submit" }, "Open"));
  /** Her record through the organisation's node: a FHIR search by patient of each type it serves. */
  async function throughNode(patient, query) {
    const types = (metadata.rest?.[0]?.resource ?? [])
      .filter((r) => (r.interaction ?? []).some((i) => i.code === "search-type") && !["Consent", "AuditEvent", "Provenance", "Patient"].includes(r.type))
      .map((r) => r.type);
    const subject = `Patient/${patient.slice("did:key:".length)}`;
    const resources = [];
    for (const type of types) {
      const bundle = await client.get(`/fhir/${type}?patient=${encodeURIComponent(subject)}${query ? `&${query.slice(1)}` : ""}`);
      for (const entry of bundle.entry ?? []) if (entry.resource) resources.push(entry.resource);
    }
    return resources.sort((a, b) => String(b.meta?.lastUpdated ?? "").localeCompare(String(a.meta?.lastUpdated ?? "")));
  }
  async function open() {
    setError(did, "");
    setError(reason, "");
    const patient = did.value.trim();
    if (!DID.test(patient)) return setError(did, "Enter the patient's did (did:key:z…).");
    const why = reason.value.trim();
    if (why && why.length < 10) return setError(reason, "An emergency reason is 10 characters or more.");
    const query = why ? `?purpose=emergency&reason=${encodeURIComponent(why)}` : "";
    try {
      if (through() && !why) {
        const resources = await throughNode(patient, query);
        mount(out, h("h2", {}, `Record of ${shortDID(patient)}`),
          h("p", { class: "meta" }, "Opened by your organisation's node."),
          resources.length ? resources.map((r) => resourceCard(r, `${r.resourceType}, version ${r.meta?.versionId ?? "?"}, ${r.meta?.lastUpdated ?? ""}`))
            : h("p", {}, "Nothing you may read yet."),
          observationForm(client, patient, principal.organisation, through, open));
        return;
      }
      if (!client.token) await client.signIn();
      const response = await fetch(`/v1/patients/${patient}/records${query}`, { headers: { Authorization: `Bearer ${client.token}`, Accept: "application/json" } });
      const answer = await response.json();
      if (!response.ok) throw new ApiError(response.status, answer?.error?.code ?? `http_${response.status}`, answer?.error?.message ?? "");
      const until = Number(response.headers.get("CareLedger-Break-Glass-Until") ?? 0);
      const opened = await openReads(answer.records ?? [], client.identity);
      const countdown = h("span", { id: "break-glass-countdown" });
      const banner = why ? h("p", { class: "notice bad", role: "alert" }, `Break-the-glass access, recorded with your reason: ${why}. `, countdown) : null;
      if (until) tick(countdown, until);
      mount(out, banner, h("h2", {}, `Record of ${shortDID(patient)}`),
        opened.length ? opened.sort((a, b) => b.read.time - a.read.time).map(({ read, resource }) => resourceCard(resource, `${read.resourceType}, version ${read.version}, ${when(read.time)}`))
          : h("p", {}, "Nothing you may read yet."),
        answer.withheld ? h("p", { class: "meta" }, `${answer.withheld} records are not shared with you.`) : null,
        principal?.organisation ? observationForm(client, patient, principal.organisation, through, open) : null);
    } catch (error) {
      const denied = error.code === "consent_denied" || String(error.message).startsWith("consent_denied");
      const words = denied ? "No consent of hers covers you. In an emergency, give a reason to break the glass." : `${error.code}: ${error.message}`;
      mount(out, h("p", { class: "notice bad", role: "alert" }, words));
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    open();
  });
  let mine = [];
  try {
    mine = (await client.get(`/v1/practitioners/${client.did}/patients`)).patients ?? [];
  } catch {
    mine = [];
  }
  const list = h("section", { "aria-labelledby": "mine-title" }, h("h2", { id: "mine-title" }, "My patients"),
    mine.length ? h("ul", {}, mine.map((p) => h("li", {}, h("a", { href: `#/patients/${p.patient}`, title: p.patient }, shortDID(p.patient)),
      ` — ${p.grants.map((g) => (g.resourceTypes.includes("*") ? "all records" : [...g.resourceTypes, ...g.categories].join(", "))).join("; ")}`)))
      : h("p", {}, "No patient's consent covers you yet."));
  mount(main, h("h1", {}, "Patients"), list, form, out);
  if (params[0]) open();
}

/** The versions waiting for her endorsement (a lab's report she ordered): each endorsed with one click. */
async function endorsements(main, context) {
  const { client } = context;
  const pending = (await client.get(`/v1/practitioners/${client.did}/endorsements`)).pending ?? [];
  mount(main, h("h1", {}, "Waiting for my endorsement"),
    pending.length ? h("ul", { class: "plain" }, pending.map((p) => h("li", { class: "card", "data-endorse": `${p.recordId}/${p.version}` },
      h("h3", {}, `${p.resourceType} ${p.recordId}, version ${p.version}`),
      h("p", { class: "meta" }, `for ${shortDID(p.patient)}, written by ${shortDID(p.author)} ${when(p.time)}; endorsed by ${p.endorsements.length} of ${p.required.length}`),
      h("div", { class: "row" },
        h("a", { href: `#/patients/${p.patient}` }, "Open her record"),
        h("button", { type: "button", onclick: async (event) => {
          event.target.disabled = true;
          try {
            const receipt = await client.submit("records", "endorse", { recordId: p.recordId, version: p.version });
            notify(receipt.result?.status === "current" ? "Endorsed: the version is now current." : "Endorsed: other parties still have to.");
            await endorsements(main, context);
          } catch (error) {
            notify(`${error.code}: ${error.message}`, "bad");
            event.target.disabled = false;
          }
        } }, "Endorse")))))
      : h("p", {}, "Nothing waits for your endorsement."));
}

export async function render(main, context) {
  return context.page.id === "endorsements" ? endorsements(main, context) : patientRecord(main, context);
}
