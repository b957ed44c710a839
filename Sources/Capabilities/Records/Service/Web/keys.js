// "My keys": the patient's keys and their history, and replacing them (a rotation): new keys made in
// this browser, the rotation signed with the current key, every version of hers still wrapped for the
// old key wrapped anew for the new one (as `careledger key rotate` does), and a backup of the new keys.
import { h, field, setError, mount, notify, shortDID, badge } from "/app/js/ui.js";
import { Client, getPublic, explain } from "/app/js/api.js";
import { base64, utf8 } from "/app/js/bytes.js";
import { sign } from "/app/js/keys.js";
import { wrapKey, unwrapKey } from "/app/js/hpke.js";
import { upload, keyEnvelope } from "/app/js/sealing.js";
import * as backup from "/app/js/backup.js";
import * as session from "/app/js/session.js";

/** Re-wraps every version whose key for her predates her current keys: opened with `old` (her previous
 *  identity's keys), wrapped for `client`'s (the new) encryption key, one envelope each. */
export async function rewrapHistory(client, old) {
  const stale = await client.get(`/v1/patients/${client.did}/keys`);
  const cache = new Map();
  let batch = [], moved = 0;
  const items = stale.keys ?? [];
  for (const [i, item] of items.entries()) {
    const context = `${item.recordId}/${item.version}`;
    const contentKey = await unwrapKey(item.wrappedKey, old.encryption, old.encryptionPublicKey, context, cache);
    const { blob, hash } = await keyEnvelope({ [client.did]: await wrapKey(contentKey, client.identity.encryptionPublicKey, context) });
    await upload(client, hash, blob);
    batch.push({ recordId: item.recordId, version: item.version, keys: hash });
    if (batch.length === 1000 || i === items.length - 1) {
      await client.submit("records", "rewrap", { patient: client.did, versions: batch });
      moved += batch.length;
      batch = [];
    }
  }
  return { moved, missing: (stale.missing ?? []).length };
}

export async function render(main, context) {
  const { client } = context;
  const me = await getPublic(`/v1/principals/${client.did}`);
  const history = me.keyHistory ?? [{ signingKey: me.did, from: 0 }];
  const pass = h("input", { type: "password", name: "rotatepassphrase", autocomplete: "new-password" });
  const reason = h("input", { type: "text", name: "rotatereason", autocomplete: "off" });
  const done = h("div", { id: "rotated", role: "status" });
  const form = h("form", { class: "card", "aria-labelledby": "rotate-title", novalidate: true },
    h("h2", { id: "rotate-title" }, "Replace my keys"),
    h("p", { class: "meta" }, "If your device or key file may be in someone else's hands: new keys are made here and become yours from the next block; the old ones sign nothing more and open nothing new. Your records follow you to the new keys."),
    field("Passphrase for the new keys' backup", pass, "12 characters or more"), field("Why (optional, on your access log)", reason),
    h("button", { type: "submit", class: "danger" }, "Replace my keys"), done);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(pass, "");
    if (pass.value.length < 12) return setError(pass, "Choose a passphrase of 12 characters or more.");
    try {
      const old = client.identity;
      const keyFile = await backup.newKeyFile(client.did);
      const file = JSON.parse(keyFile);
      const next = await session.fromKeyFileText(keyFile);
      const chain = await client.chain();
      const proof = await sign(next.signing, utf8(`careledger-rotate\n${chain}\n${client.did}\n${next.keyDID}\n${file.encryptionPublicKey}\n`));
      const payload = { signingKey: next.keyDID, encryptionKey: file.encryptionPublicKey, proof: base64(proof) };
      if (reason.value.trim()) payload.reason = reason.value.trim();
      const sealed = await backup.seal(keyFile, pass.value);
      await client.submit("identity", "rotate", payload);
      const keep = await session.kept();
      const identity = await session.importKeyFile(keyFile, keep);
      const fresh = new Client(identity);
      const { moved, missing } = await rewrapHistory(fresh, old);
      context.replaceClient?.(fresh);
      mount(done, h("p", {}, `Your keys were replaced; ${moved} record versions now open with the new keys${missing ? `, ${missing} more are re-wrapped by their custodians` : ""}. Save the new backup: the old key file is useless now.`),
        backup.saveLink(sealed, "careledger-key-backup.json", "Save my new encrypted backup"));
      notify("Keys replaced.");
    } catch (error) {
      setError(pass, explain(error));
    }
  });
  mount(main, h("h1", {}, "My keys"),
    h("p", {}, "Your identity: ", h("span", { class: "mono" }, client.did), me.frozen ? [" ", badge("frozen", "bad")] : null),
    h("table", {}, h("caption", { class: "meta" }, "The keys that have signed for you, and from which block"),
      h("thead", {}, h("tr", {}, ["Signing key", "From", "Until", "Why"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, history.map((k) => h("tr", {}, h("td", { title: k.signingKey }, shortDID(k.signingKey)), h("td", {}, String(k.from ?? 0)),
        h("td", {}, k.until === undefined ? "current" : String(k.until)), h("td", {}, k.reason ?? "registered"))))),
    me.frozen ? h("p", { class: "notice bad" }, "Your key is frozen: ask your guardians to recover you, or two organisations to replace it in person.") : form);
}
