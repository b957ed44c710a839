// C2SP signed notes (and tlog checkpoints), verified in the browser with a verifier key
// `<name>+<key id hex>+<base64(0x01 || Ed25519 public key)>`.
import { concat, equal, fromBase64, fromUTF8, sha256, utf8 } from "./bytes.js";
import { verify } from "./keys.js";

export async function parseVerifierKey(vkey) {
  // name+id+key, where the base64 key may itself hold "+".
  const first = vkey.indexOf("+"), second = vkey.indexOf("+", first + 1);
  const parts = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  if (first <= 0 || second < 0 || /\s/.test(parts[0]) || !/^[0-9a-f]{8}$/.test(parts[1])) throw new Error("a verifier key is name+id+key");
  const key = fromBase64(parts[2]);
  if (key.length !== 33 || key[0] !== 1) throw new Error("an Ed25519 verifier key is 0x01 then 32 bytes");
  const id = (await sha256(concat(utf8(parts[0] + "\n"), key))).slice(0, 4);
  if (parts[1] !== Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("")) throw new Error("the key id does not match the key");
  return { name: parts[0], id, publicKey: key.slice(1) };
}

/** The note's text if a signature by `vkey` verifies; throws otherwise. */
export async function verifyNote(note, vkey) {
  const verifier = await parseVerifierKey(vkey);
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("a note is text, a blank line, then signature lines");
  const text = note.slice(0, split + 1);
  if (text.includes("\r") || [...text].some((c) => c.codePointAt(0) < 0x20 && c !== "\n")) throw new Error("the text has control characters");
  const lines = note.slice(split + 2, -1).split("\n");
  for (const line of lines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error("a malformed signature line");
    if (m[1] !== verifier.name) continue;
    const sig = fromBase64(m[2]);
    if (sig.length !== 68 || !equal(sig.slice(0, 4), verifier.id)) continue;
    if (await verify(verifier.publicKey, sig.slice(4), utf8(text))) return text;
  }
  throw new Error("no signature by " + verifier.name + " verifies");
}

/** A checkpoint's body (origin, size, base64 root hash), from a verified note text. */
export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || !/^\d+$/.test(lines[1])) throw new Error("a checkpoint is origin, size, root hash");
  const root = fromBase64(lines[2]);
  if (root.length !== 32) throw new Error("a checkpoint's root is 32 bytes");
  return { origin: lines[0], size: Number(lines[1]), root, extensions: lines.slice(3, -1) };
}

export { fromUTF8 };
