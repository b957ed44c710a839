// Keys on WebCrypto: Ed25519 for signatures, X25519 for HPKE; did:key names.
import { concat, fromBase64 } from "./bytes.js";

const ED25519_PKCS8 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const X25519_PKCS8 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

export function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = "1" + out;
  }
  return out;
}

export function fromBase58(text) {
  let n = 0n;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error("not base58");
    n = n * 58n + BigInt(v);
  }
  const out = [];
  while (n > 0n) {
    out.unshift(Number(n & 255n));
    n >>= 8n;
  }
  for (const ch of text) {
    if (ch !== "1") break;
    out.unshift(0);
  }
  return Uint8Array.from(out);
}

/** did:key of a raw Ed25519 public key (multicodec 0xed01, base58btc). */
export const didKey = (publicKey) => "did:key:z" + base58(concat(Uint8Array.from([0xed, 0x01]), publicKey));

/** The raw Ed25519 public key a did:key names. */
export function publicKeyOf(did) {
  if (!did.startsWith("did:key:z")) throw new Error("not a did:key");
  const bytes = fromBase58(did.slice(9));
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) throw new Error("not an Ed25519 did:key");
  return bytes.slice(2);
}

/** An Ed25519 signing key from its 32-byte seed. */
export const importSigningSeed = (seed, extractable = false) =>
  crypto.subtle.importKey("pkcs8", concat(ED25519_PKCS8, seed), { name: "Ed25519" }, extractable, ["sign"]);

/** An X25519 private key from its 32 raw bytes. */
export const importX25519Private = (raw, extractable = false) =>
  crypto.subtle.importKey("pkcs8", concat(X25519_PKCS8, raw), { name: "X25519" }, extractable, ["deriveBits"]);

export const importX25519Public = (raw) => crypto.subtle.importKey("raw", raw, { name: "X25519" }, true, []);

/** The raw public key of a private key imported extractable (from its JWK's `x`). */
export async function publicOf(privateKey) {
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  return fromBase64(jwk.x);
}

export async function sign(key, message) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
}

export async function verify(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

/**
 * A principal's keys from a CareLedger key file (`careledger key generate`): non-extractable WebCrypto
 * keys, the public keys, and the did it signs for (its `principal` after a rotation).
 */
export async function fromKeyFile(text) {
  const file = JSON.parse(text);
  if (!file.privateKey || !file.encryptionPrivateKey) throw new Error("not a CareLedger key file (privateKey, encryptionPrivateKey)");
  const seed = fromBase64(file.privateKey), encryption = fromBase64(file.encryptionPrivateKey);
  const probe = await importSigningSeed(seed, true);
  const publicKey = await publicOf(probe);
  const keyDID = didKey(publicKey);
  if (file.did && file.did !== keyDID) throw new Error("the key file's did does not match its private key");
  const x = await importX25519Private(encryption, true);
  return {
    did: file.principal || keyDID,
    keyDID,
    publicKey,
    signing: await importSigningSeed(seed, false),
    encryption: await importX25519Private(encryption, false),
    encryptionPublicKey: await publicOf(x),
  };
}
