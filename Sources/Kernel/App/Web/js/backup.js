// New identities made in the browser, and encrypted backups of them: the key file (CareLedger's
// format) sealed with AES-256-GCM under a key derived from a passphrase with PBKDF2-SHA256,
// 600,000 iterations, a fresh 16-byte salt. The backup is a JSON file the user keeps; no server sees it.
import { base64, fromBase64, utf8, fromUTF8 } from "./bytes.js";
import { didKey } from "./keys.js";

export const ITERATIONS = 600000;
export const FORMAT = "careledger-key-backup/v1";

async function passphraseKey(passphrase, salt, iterations) {
  const material = await crypto.subtle.importKey("raw", utf8(passphrase.normalize("NFC")), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, material, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** Fresh Ed25519 and X25519 keys as a CareLedger key file's text (made extractable once, to write it);
 *  `principal`: the did they will sign for (after a rotation or a recovery), when not their own. */
export async function newKeyFile(principal = null) {
  const signing = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const encryption = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const seed = new Uint8Array(await crypto.subtle.exportKey("pkcs8", signing.privateKey)).slice(-32);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", signing.publicKey));
  const encPrivate = new Uint8Array(await crypto.subtle.exportKey("pkcs8", encryption.privateKey)).slice(-32);
  const encPublic = new Uint8Array(await crypto.subtle.exportKey("raw", encryption.publicKey));
  const file = {
    type: "Ed25519", did: didKey(publicKey), publicKey: base64(publicKey), privateKey: base64(seed),
    encryptionPublicKey: base64(encPublic), encryptionPrivateKey: base64(encPrivate),
  };
  if (principal && principal !== file.did) file.principal = principal;
  return JSON.stringify(file);
}

/** The encrypted backup (JSON text) of a key file's text. */
export async function seal(keyFileText, passphrase) {
  if (passphrase.length < 12) throw new Error("a passphrase has at least 12 characters");
  const salt = crypto.getRandomValues(new Uint8Array(16)), nonce = crypto.getRandomValues(new Uint8Array(12));
  const key = await passphraseKey(passphrase, salt, ITERATIONS);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: utf8(FORMAT) }, key, utf8(keyFileText)));
  return JSON.stringify({ format: FORMAT, kdf: "PBKDF2-SHA256", iterations: ITERATIONS, salt: base64(salt), nonce: base64(nonce), ciphertext: base64(ciphertext) });
}

/** A link that saves `text` as a file (the user keeps it; nothing is stored by the app). */
export function saveLink(text, name, label) {
  const a = document.createElement("a");
  a.className = "button";
  a.download = name;
  a.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  a.textContent = label;
  return a;
}

/** The key file's text inside a backup; a wrong passphrase or a changed file throws. */
export async function open(backupText, passphrase) {
  let backup;
  try {
    backup = JSON.parse(backupText);
  } catch {
    throw new Error("this is not a CareLedger key backup");
  }
  if (backup.format !== FORMAT || backup.kdf !== "PBKDF2-SHA256" || !(backup.iterations >= ITERATIONS)) throw new Error("this is not a CareLedger key backup");
  const key = await passphraseKey(passphrase, fromBase64(backup.salt), backup.iterations);
  try {
    return fromUTF8(new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(backup.nonce), additionalData: utf8(FORMAT) }, key, fromBase64(backup.ciphertext))));
  } catch {
    throw new Error("wrong passphrase, or the backup was changed");
  }
}
