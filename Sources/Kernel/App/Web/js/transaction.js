// The transaction encoding (LedgerCore/Transaction.swift, version 1): 0x01; chain id (string);
// author (32-byte Ed25519 public key); nonce (varint); contract (string); action (string); payload
// (bytes: canonical JSON of an object); signature (64 bytes over everything before it). A string or
// bytes field is a varint length then the bytes. The id is SHA-256 of the whole encoding.
import { concat, sha256, utf8, base64, hex } from "./bytes.js";
import { canonicalBytes } from "./canonical-json.js";
import { sign } from "./keys.js";

export function varint(value) {
  let v = BigInt(value);
  if (v < 0n) throw new Error("a varint is unsigned");
  const out = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

const field = (bytes) => concat(varint(bytes.length), bytes);

function checkName(value, what) {
  if (!/^[\x21-\x7e]{1,128}$/.test(value)) throw new Error(`${what} must be 1-128 printable ASCII characters without spaces`);
}

/** A fresh random nonce below 2^62 (as the Swift client draws). */
export function freshNonce() {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0] & 0x3fffffff) << 32n) | BigInt(words[1]);
}

/** The bytes the author signs. */
export function body({ chainId, author, nonce, contract, action, payload }) {
  checkName(chainId, "chainId");
  checkName(contract, "contract");
  checkName(action, "action");
  if (author.length !== 32) throw new Error("the author is a 32-byte Ed25519 public key");
  const payloadBytes = payload instanceof Uint8Array ? payload : canonicalBytes(payload);
  return concat(Uint8Array.of(1), field(utf8(chainId)), author, varint(nonce), field(utf8(contract)), field(utf8(action)), field(payloadBytes));
}

/** Signs a transaction with `signing` (a WebCrypto Ed25519 key whose raw public key is `author`). */
export async function signTransaction(fields, signing) {
  const unsigned = body(fields);
  const encoded = concat(unsigned, await sign(signing, unsigned));
  return { encoded, id: hex(await sha256(encoded)), raw: base64(encoded) };
}
