// Key recovery in the app: a patient names her guardians; a guardian approves the request whose
// check code the patient reads out to her (the last approval needed makes that device's keys hers).
import { h, field, setError, mount, notify, when, shortDID } from "/app/js/ui.js";
import { explain } from "/app/js/api.js";

const DID = /^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$/;

function setupForm(client) {
  const guardians = h("textarea", { name: "guardians", rows: "3" });
  const threshold = h("input", { type: "number", name: "threshold", min: "1", value: "2" });
  const form = h("form", { class: "card", "aria-labelledby": "setup-title", novalidate: true },
    h("h2", { id: "setup-title" }, "My guardians"),
    h("p", { class: "meta" }, "If you lose your keys, enough of these people approve your new device, which then becomes you; your old keys stop working."),
    field("Guardians (one did per line)", guardians), field("How many must approve", threshold),
    h("button", { type: "submit" }, "Save my guardians"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(guardians, "");
    setError(threshold, "");
    const list = guardians.value.split(/\s+/).filter(Boolean);
    if (!list.length || list.some((d) => !DID.test(d))) return setError(guardians, "One did:key per line.");
    if (new Set(list).size !== list.length) return setError(guardians, "A guardian is named twice.");
    const k = Number(threshold.value);
    if (!Number.isInteger(k) || k < 1 || k > list.length) return setError(threshold, `A number from 1 to ${list.length}.`);
    try {
      await client.submit("recovery", "setup", { threshold: k, guardians: list });
      notify(`Saved: ${k} of ${list.length} guardians recover your keys.`);
    } catch (error) {
      setError(guardians, explain(error));
    }
  });
  return form;
}

function approveForm(client) {
  const patient = h("input", { type: "text", name: "guarded", autocomplete: "off", spellcheck: "false" });
  const list = h("div", { id: "requests" });
  const form = h("form", { class: "card", "aria-labelledby": "approve-title", novalidate: true },
    h("h2", { id: "approve-title" }, "Someone I guard lost their keys"),
    field("Their did", patient), h("button", { type: "submit" }, "Show their requests"), list);
  async function show() {
    setError(patient, "");
    if (!DID.test(patient.value.trim())) return setError(patient, "Enter their did (did:key:z…).");
    try {
      const requests = (await client.get(`/v1/recovery/${patient.value.trim()}/requests`)).requests ?? [];
      const open = requests.filter((r) => r.status === "open" && r.current !== false);
      mount(list, open.length ? open.map((r) => h("div", { class: "card" },
        h("p", {}, `Check code `, h("strong", {}, r.checkCode), ` — approve only if they read out this code to you.`),
        h("p", { class: "meta" }, `Asked ${when(r.timeMillis)} from ${shortDID(r.requester)}; ${(r.approvals ?? []).length} approvals so far.`),
        h("button", { type: "button", "data-approve": r.checkCode, onclick: async (event) => {
          event.target.disabled = true;
          try {
            const receipt = await client.submit("recovery", "approve", { patient: r.patient, requester: r.requester, request: r.id });
            notify(receipt.result?.status === "completed" ? "Approved: their new device is now them." : "Approved: waiting for the other guardians.");
            await show();
          } catch (error) {
            notify(`${error.code}: ${error.message}`, "bad");
            event.target.disabled = false;
          }
        } }, `Approve ${r.checkCode}`))) : h("p", {}, "No request waits."));
    } catch (error) {
      setError(patient, explain(error));
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  return form;
}

export async function render(main, context) {
  const { client, principal } = context;
  mount(main, h("h1", {}, "Guardians"), principal.role === "patient" ? setupForm(client) : null, approveForm(client));
}
