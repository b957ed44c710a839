// "I lost my keys": on a new device, new keys are made here and ask the patient's guardians; she reads
// the check code out to them; once enough approve, these keys are hers and she is signed in.
import { h, field, setError, mount, notify } from "/app/js/ui.js";
import { Client, explain } from "/app/js/api.js";
import { base64, sha256, hex, concat, utf8 } from "/app/js/bytes.js";
import * as backup from "/app/js/backup.js";
import * as session from "/app/js/session.js";

const DID = /^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$/;

/** The request's check code (RecoveryContract.checkCode): ten hex digits of SHA-256(requester ‖ 0 ‖ encryption key). */
export async function checkCode(requester, encryptionKey) {
  const digest = hex(await sha256(concat(utf8(requester), Uint8Array.of(0), utf8(encryptionKey))));
  return `${digest.slice(0, 5)}-${digest.slice(5, 10)}`;
}

export async function render(main, context) {
  const did = h("input", { type: "text", name: "recoverdid", autocomplete: "off", spellcheck: "false" });
  const pass = h("input", { type: "password", name: "recoverpassphrase", autocomplete: "new-password" });
  const out = h("div", { id: "recovery", role: "status" });
  const form = h("form", { class: "card", "aria-labelledby": "recover-title", novalidate: true },
    h("h2", { id: "recover-title" }, "I lost my keys"),
    h("p", { class: "meta" }, "This device makes new keys and asks your guardians. Once enough of them approve, these keys are yours, and your old ones stop working."),
    field("Your did", did), field("Passphrase for the new keys' backup", pass, "12 characters or more"),
    h("button", { type: "submit" }, "Ask my guardians"), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(did, "");
    setError(pass, "");
    const patient = did.value.trim();
    if (!DID.test(patient)) return setError(did, "Enter your did (did:key:z…): your guardians know it.");
    if (pass.value.length < 12) return setError(pass, "Choose a passphrase of 12 characters or more.");
    try {
      const keyFile = await backup.newKeyFile(patient);
      const next = await session.fromKeyFileText(keyFile);
      const requester = new Client({ ...next, did: next.keyDID });
      const encryptionKey = base64(next.encryptionPublicKey);
      await requester.submit("recovery", "request", { patient, encryptionKey });
      const code = await checkCode(next.keyDID, encryptionKey);
      const sealed = await backup.seal(keyFile, pass.value);
      const state = h("p", { id: "recovery-state" }, "Waiting for your guardians.");
      const check = h("button", { type: "button" }, "Have they approved?");
      check.addEventListener("click", async () => {
        try {
          const mine = ((await requester.get(`/v1/recovery/${patient}/requests`)).requests ?? []).find((r) => r.requester === next.keyDID);
          if (mine?.status !== "completed") {
            state.textContent = `Not yet: ${(mine?.approvals ?? []).length} approval(s).`;
            return;
          }
          await context.enter(await session.importKeyFile(keyFile, false));
        } catch (error) {
          state.textContent = explain(error);
        }
      });
      mount(out, h("p", {}, "Read this code out to your guardians (by phone, in person): ", h("strong", { id: "check-code" }, code)),
        backup.saveLink(sealed, "careledger-key-backup.json", "Save the new keys' encrypted backup"), state, check);
      notify("Asked: your guardians can now approve.");
    } catch (error) {
      setError(did, explain(error));
    }
  });
  mount(main, h("h1", {}, "Recover my keys"), form);
}
