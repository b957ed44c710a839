// HPKE (RFC 9180) base mode on WebCrypto: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM or
// AES-256-GCM; and CareLedger's key wrap on it (Standards/KeyWrap.swift): a record version's content
// key sealed for a reader (info "careledger/record-key/v1", the record context as AAD), or, in export
// mode, under a key exported for the context from one encapsulation shared by many versions.
import { concat, utf8, fromBase64 } from "./bytes.js";
import { importX25519Private, importX25519Public } from "./keys.js";

const i2osp = (n, length) => {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--, n >>= 8) out[i] = n & 0xff;
  return out;
};

async function hmac(key, data) {
  const k = await crypto.subtle.importKey("raw", key.length ? key : new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

const extract = (salt, ikm) => hmac(salt.length ? salt : new Uint8Array(32), ikm);

async function expand(prk, info, length) {
  let t = new Uint8Array(0), out = new Uint8Array(0);
  for (let i = 1; out.length < length; i++) {
    t = await hmac(prk, concat(t, info, Uint8Array.of(i)));
    out = concat(out, t);
  }
  return out.slice(0, length);
}

const KEM_ID = 0x0020, KDF_ID = 0x0001;
const kemSuite = concat(utf8("KEM"), i2osp(KEM_ID, 2));
const hpkeSuite = (aeadID) => concat(utf8("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(aeadID, 2));
const labeledExtract = (suite, salt, label, ikm) => extract(salt, concat(utf8("HPKE-v1"), suite, utf8(label), ikm));
const labeledExpand = (suite, prk, label, info, length) => expand(prk, concat(i2osp(length, 2), utf8("HPKE-v1"), suite, utf8(label), info), length);
const KEY_LENGTH = { 1: 16, 2: 32 };

async function x25519(privateKey, publicRaw) {
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: await importX25519Public(publicRaw) }, privateKey, 256));
}

async function sharedSecret(dh, enc, pkR) {
  const prk = await labeledExtract(kemSuite, new Uint8Array(0), "eae_prk", dh);
  return labeledExpand(kemSuite, prk, "shared_secret", concat(enc, pkR), 32);
}

/** DeriveKeyPair(ikm) for X25519 (§7.1.3): the raw private key. */
export async function deriveX25519(ikm) {
  const prk = await labeledExtract(kemSuite, new Uint8Array(0), "dkp_prk", ikm);
  return labeledExpand(kemSuite, prk, "sk", new Uint8Array(0), 32);
}

/** The base-mode key schedule (§5.1): key, base nonce, exporter secret. */
export async function keySchedule(shared, info, aeadID) {
  const suite = hpkeSuite(aeadID);
  const pskIDHash = await labeledExtract(suite, new Uint8Array(0), "psk_id_hash", new Uint8Array(0));
  const infoHash = await labeledExtract(suite, new Uint8Array(0), "info_hash", info);
  const context = concat(Uint8Array.of(0), pskIDHash, infoHash);
  const secret = await labeledExtract(suite, shared, "secret", new Uint8Array(0));
  return {
    context,
    secret,
    key: await labeledExpand(suite, secret, "key", context, KEY_LENGTH[aeadID]),
    baseNonce: await labeledExpand(suite, secret, "base_nonce", context, 12),
    exporterSecret: await labeledExpand(suite, secret, "exp", context, 32),
  };
}

/** The recipient's side: decapsulates `enc` with `privateKey` (WebCrypto X25519, its raw public key `pkR`). */
export async function setupBaseR(enc, privateKey, pkR, info, aeadID = 2) {
  const shared = await sharedSecret(await x25519(privateKey, enc), enc, pkR);
  return { shared, ...(await keySchedule(shared, info, aeadID)) };
}

/** The sender's side with a chosen ephemeral key (`skE` raw, for test vectors) or a fresh one. */
export async function setupBaseS(pkR, info, aeadID = 2, skE = null) {
  let ephemeral, enc;
  if (skE) {
    ephemeral = await importX25519Private(skE, true);
    enc = Uint8Array.from(atob((await crypto.subtle.exportKey("jwk", ephemeral)).x.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  } else {
    const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    ephemeral = pair.privateKey;
    enc = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  }
  const shared = await sharedSecret(await x25519(ephemeral, pkR), enc, pkR);
  return { enc, shared, ...(await keySchedule(shared, info, aeadID)) };
}

/** The nonce of sequence number `seq`: the base nonce XOR seq. */
export function nonce(baseNonce, seq) {
  const out = Uint8Array.from(baseNonce);
  const s = i2osp(seq, 12);
  for (let i = 0; i < 12; i++) out[i] ^= s[i];
  return out;
}

async function aesKey(raw, usage) {
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
}

export async function seal(context, seq, aad, plaintext) {
  const key = await aesKey(context.key, "encrypt");
  return new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce(context.baseNonce, seq), additionalData: aad }, key, plaintext));
}

export async function open(context, seq, aad, ciphertext) {
  const key = await aesKey(context.key, "decrypt");
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce(context.baseNonce, seq), additionalData: aad }, key, ciphertext));
}

/** Export(exporter_context, L) (§5.3). */
export const exportSecret = (context, exporterContext, length, aeadID = 2) =>
  labeledExpand(hpkeSuite(aeadID), context.exporterSecret, "sec", exporterContext, length);

const WRAP_INFO = utf8("careledger/record-key/v1");
const EXPORT_LABEL = "careledger/record-key-export/v1/";

/**
 * Opens a CareLedger wrapped key ({enc, ct, mode?} in base64) with the reader's X25519 key for a record
 * context (`<record id>/<version>`): the 32-byte content key. `cache` (a Map) keeps one decapsulation per `enc`.
 */
export async function unwrapKey(wrapped, privateKey, publicKey, recordContext, cache = null) {
  const enc = fromBase64(wrapped.enc), ct = fromBase64(wrapped.ct), aad = utf8(recordContext);
  if (wrapped.mode === "export") {
    let context = cache?.get(wrapped.enc);
    if (!context) {
      context = await setupBaseR(enc, privateKey, publicKey, WRAP_INFO);
      cache?.set(wrapped.enc, context);
    }
    const kek = await exportSecret(context, utf8(EXPORT_LABEL + recordContext), 32);
    const key = await aesKey(kek, "decrypt");
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: ct.slice(0, 12), additionalData: aad }, key, ct.slice(12)));
  }
  return open(await setupBaseR(enc, privateKey, publicKey, WRAP_INFO), 0, aad, ct);
}

/** Opens a record version's ciphertext (nonce 12 ‖ ciphertext ‖ tag, AES-256-GCM, the record context as AAD). */
export async function openContent(contentKey, sealed, recordContext) {
  const key = await aesKey(contentKey, "decrypt");
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.slice(0, 12), additionalData: utf8(recordContext) }, key, sealed.slice(12)));
}

/** Wraps a 32-byte content key for a reader's raw X25519 public key (single-shot, as the Swift KeyWrap.wrap): {enc, ct} in base64. */
export async function wrapKey(contentKey, recipientPublic, recordContext) {
  const sender = await setupBaseS(recipientPublic, WRAP_INFO);
  const ct = await seal(sender, 0, utf8(recordContext), contentKey);
  return { ct: b64(ct), enc: b64(sender.enc) };
}

function b64(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}
