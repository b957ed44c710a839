// Runs the standard vectors through the app's own modules, in the browser (the browser suite calls these).
import { fromHex, hex, fromBase64 } from "./bytes.js";
import { canonical, parse } from "./canonical-json.js";
import { importSigningSeed, importX25519Private } from "./keys.js";
import { signTransaction } from "./transaction.js";
import { deriveX25519, setupBaseR, setupBaseS, open, seal } from "./hpke.js";
import { verifyInclusion, verifyConsistency } from "./merkle.js";
import { verifyNote } from "./note.js";

export async function transactions(cases) {
  const out = [];
  for (const c of cases) {
    const payload = parse(c.payloadText);
    const signing = await importSigningSeed(fromHex(c.seed));
    const author = fromHex(c.encoded.slice(2 + 2 + 2 * c.chainId.length, 2 + 2 + 2 * c.chainId.length + 64));
    const tx = await signTransaction({ chainId: c.chainId, author, nonce: BigInt(c.nonceText), contract: c.contract, action: c.action, payload }, signing);
    out.push({ canonical: canonical(payload), encoded: hex(tx.encoded), id: tx.id });
  }
  return out;
}

export async function hpke(vectors) {
  const out = [];
  for (const v of vectors) {
    const skR = await deriveX25519(fromHex(v.ikmR));
    const privateKey = await importX25519Private(skR);
    const r = await setupBaseR(fromHex(v.enc), privateKey, fromHex(v.pkRm), fromHex(v.info), v.aead_id);
    const plaintexts = [];
    for (const [i, e] of v.encryptions.entries()) plaintexts.push(hex(await open(r, i, fromHex(e.aad), fromHex(e.ct))));
    const s = await setupBaseS(fromHex(v.pkRm), fromHex(v.info), v.aead_id, await deriveX25519(fromHex(v.ikmE)));
    const first = v.encryptions[0];
    out.push({
      skR: hex(skR), shared: hex(r.shared), key: hex(r.key), baseNonce: hex(r.baseNonce), exporterSecret: hex(r.exporterSecret), plaintexts,
      enc: hex(s.enc), firstCiphertext: hex(await seal(s, 0, fromHex(first.aad), fromHex(first.pt))),
    });
  }
  return out;
}

async function accepts(work) {
  try {
    await work();
    return true;
  } catch {
    return false;
  }
}

const b64 = (text) => fromBase64(text ?? "");

export async function merkle({ inclusion, consistency }) {
  const a = [], b = [];
  for (const v of inclusion) a.push(await accepts(() => verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), (v.proof ?? []).map(b64), b64(v.root))));
  for (const v of consistency) b.push(await accepts(() => verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), (v.proof ?? []).map(b64))));
  return { inclusion: a, consistency: b };
}

export async function notes(vectors) {
  const out = [];
  for (const c of vectors.cases) out.push(await accepts(() => verifyNote(c.note, c.vkey ?? vectors.vkey)));
  return out;
}
