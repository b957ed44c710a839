// The signed-in identity: keys as non-extractable WebCrypto keys, in memory; in IndexedDB only when the
// user chose to keep them on this device. Sign-out wipes them. No record plaintext is ever stored.
import { fromKeyFile } from "./keys.js";

const DB = "careledger", STORE = "identity";

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result.result);
    tx.onerror = () => reject(tx.error);
  });
}

let current = null;

export const identity = () => current;

/** Whether the keys are kept on this device (IndexedDB). */
export async function kept() {
  try {
    return (await transact("readonly", (s) => s.get("current"))) != null;
  } catch {
    return false;
  }
}

/** A key file's keys without making them the session's. */
export const fromKeyFileText = (text) => fromKeyFile(text);

export async function importKeyFile(text, keep) {
  current = await fromKeyFile(text);
  if (keep) await transact("readwrite", (s) => s.put(current, "current"));
  else await forget();
  return current;
}

/** The identity kept on this device, if any (CryptoKeys survive in IndexedDB, still non-extractable). */
export async function restore() {
  try {
    current = (await transact("readonly", (s) => s.get("current"))) ?? null;
  } catch {
    current = null;
  }
  return current;
}

export async function forget() {
  try {
    await transact("readwrite", (s) => s.delete("current"));
  } catch {
    /* nothing kept */
  }
}

/** Signs out: the keys leave memory; they stay on this device only if the user kept them there and does not ask to forget them. */
export async function signOut(forgetDevice = true) {
  current = null;
  if (forgetDevice) await forget();
}
