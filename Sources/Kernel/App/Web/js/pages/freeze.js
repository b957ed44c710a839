// For an organisation that has seen a patient in person: freeze her key (suspected theft), lift the
// freeze, or replace her keys with those of her new device (a second organisation confirms each).
import { h, field, setError, mount, notify } from "../ui.js";
import { explain } from "../api.js";

const DID = /^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$/;

function act(client, title, id, fields, build) {
  const out = h("div", { id: `${id}-result`, role: "status" });
  const button = h("button", { type: "submit" }, title);
  const form = h("form", { class: "card", "aria-labelledby": `${id}-title`, novalidate: true }, h("h2", { id: `${id}-title` }, title), fields.map((f) => f.field), button, out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const f of fields) setError(f.control, "");
    try {
      const [action, payload] = await build();
      const receipt = await client.submit("identity", action, payload);
      const status = receipt.result?.status;
      mount(out, h("p", {}, status === "proposed" ? "Proposed: a second organisation confirms with the same step." : `Done: ${status}.`));
      notify(status === "proposed" ? "Proposed." : `Done: ${status}.`);
    } catch (error) {
      setError(fields[0].control, explain(error));
    }
  });
  return form;
}

function didField(name, label) {
  const control = h("input", { type: "text", name, autocomplete: "off", spellcheck: "false" });
  return { control, field: field(label, control) };
}

function subject(f) {
  const did = f.control.value.trim();
  if (!DID.test(did)) {
    setError(f.control, "Enter the patient's did (did:key:z…).");
    throw new Error("Enter the patient's did (did:key:z…).");
  }
  return did;
}

export async function render(main, { client }) {
  const freezeWho = didField("freezesubject", "Patient (did)");
  const reasonControl = h("input", { type: "text", name: "freezereason", autocomplete: "off" });
  const liftWho = didField("liftsubject", "Patient (did)");
  const rotateWho = didField("rotatesubject", "Patient (did)");
  const proofControl = h("input", { type: "file", name: "proof", accept: ".json,application/json" });
  mount(main, h("h1", {}, "Suspected key theft"),
    h("p", {}, "Only for a patient you have verified in person. Each step is on her access log, and takes effect when a second organisation confirms it."),
    act(client, "Freeze her key", "freeze", [freezeWho, { control: reasonControl, field: field("Why", reasonControl) }], async () => {
      const payload = { subject: subject(freezeWho) };
      if (reasonControl.value.trim()) payload.reason = reasonControl.value.trim();
      return ["freeze", payload];
    }),
    act(client, "Give her new device's keys", "inperson", [rotateWho, { control: proofControl, field: field("Her proof (from her new device)", proofControl) }], async () => {
      const did = subject(rotateWho);
      const file = proofControl.files?.[0];
      if (!file) throw new Error("Choose the proof file her new device made.");
      const proof = JSON.parse(await file.text());
      if (proof.did !== did) throw new Error("The proof is for another did.");
      return ["rotate", { subject: did, signingKey: proof.signingKey, encryptionKey: proof.encryptionKey, proof: proof.proof }];
    }),
    act(client, "Lift the freeze (a false alarm)", "lift", [liftWho], async () => ["unfreeze", { subject: subject(liftWho) }]));
}
