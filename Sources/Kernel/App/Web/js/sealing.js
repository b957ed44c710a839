// Record versions sealed and opened in the browser, as Standards/RecordSealing.swift does: the FHIR
// JSON under a fresh AES-256-GCM key (nonce ‖ ciphertext ‖ tag, the context `<record id>/<version>` as
// AAD), the vault blob a 32-byte salt then that, named by its SHA-256; the key wrapped with HPKE for each
// reader in a key envelope (salt ‖ canonical JSON {did: wrapped key}).
import { concat, sha256, hex, utf8, fromBase64, fromUTF8 } from "./bytes.js";
import { wrapKey, unwrapKey, openContent } from "./hpke.js";
import { canonicalBytes } from "./canonical-json.js";

/** A key envelope (salt ‖ canonical JSON {did: wrapped key}) and its name, SHA-256 of the blob. */
export async function keyEnvelope(keys) {
  const blob = concat(crypto.getRandomValues(new Uint8Array(32)), canonicalBytes(keys));
  return { blob, hash: hex(await sha256(blob)) };
}

/** Seals a new version for `recipients` (did → raw X25519 key). */
export async function seal(resource, recordID, version, recipients) {
  const context = `${recordID}/${version}`;
  const contentKey = crypto.getRandomValues(new Uint8Array(32));
  const aes = await crypto.subtle.importKey("raw", contentKey, { name: "AES-GCM" }, false, ["encrypt"]);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = concat(nonce, new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: utf8(context) }, aes, canonicalBytes(resource))));
  const blob = concat(crypto.getRandomValues(new Uint8Array(32)), sealed);
  const keys = {};
  for (const [did, key] of Object.entries(recipients)) keys[did] = await wrapKey(contentKey, key, context);
  const envelope = await keyEnvelope(keys);
  return { blob, hash: hex(await sha256(blob)), envelope: envelope.blob, envelopeHash: envelope.hash, recipients: Object.keys(keys).sort() };
}

/** Opens record reads (`GET /v1/records/{id}`, a timeline's `records`) with the principal's key (one decapsulation per shared `enc`). */
export async function openReads(reads, identity) {
  const cache = new Map();
  const out = [];
  for (const read of reads) {
    const key = await unwrapKey(read.wrappedKey, identity.encryption, identity.encryptionPublicKey, read.context, cache);
    const plain = await openContent(key, fromBase64(read.ciphertext), read.context);
    out.push({ read, resource: JSON.parse(fromUTF8(plain)), contentKey: key });
  }
  return out;
}

/** A vault upload (the blob under its salted hash), with the signed-in principal's token. */
export async function upload(client, hash, bytes) {
  if (!client.token) await client.signIn();
  const response = await fetch(`/v1/vault/${hash}`, { method: "PUT", headers: { Authorization: `Bearer ${client.token}`, "Content-Type": "application/octet-stream" }, body: bytes });
  if (!response.ok) throw new Error(`the vault refused the upload: ${response.status} ${await response.text()}`);
}
