// The ledger for auditors and everyone: the latest blocks (final or not), and a receipt check that
// verifies, in this browser, the node's signed checkpoint and the transaction's inclusion proof.
import { getPublic, getText } from "../api.js";
import { fromBase64, equal, hex, sha256 } from "../bytes.js";
import { leafHash, verifyInclusion } from "../merkle.js";
import { verifyNote, parseCheckpoint } from "../note.js";
import { h, field, setError, when, badge, shortDID, mount } from "../ui.js";

/** Checks a transaction's receipt: the checkpoint's signature (the node's key), the inclusion proof
 *  against the checkpoint's root, and that the leaf is the transaction's bytes. Returns what was proven. */
export async function checkReceipt(id, proofAnswer, vkey) {
  const raw = fromBase64(proofAnswer.raw);
  if (hex(await sha256(raw)) !== id) throw new Error("the transaction's bytes do not hash to its id");
  const leaf = await leafHash(raw);
  if (!equal(leaf, fromBase64(proofAnswer.leafHash))) throw new Error("the leaf is not the transaction's");
  const text = await verifyNote(proofAnswer.checkpoint, vkey);
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.size !== proofAnswer.treeSize) throw new Error("the proof is for another tree size than the checkpoint's");
  await verifyInclusion(proofAnswer.leafIndex, checkpoint.size, leaf, proofAnswer.hashes.map(fromBase64), checkpoint.root);
  return { origin: checkpoint.origin, size: checkpoint.size, leafIndex: proofAnswer.leafIndex };
}

export async function render(main) {
  const [health, blocks] = await Promise.all([getPublic("/healthz"), getPublic("/v1/blocks?from=0&limit=1")]);
  const from = Math.max(0, health.height - 19);
  const latest = from > 0 ? await getPublic(`/v1/blocks?from=${from}&limit=20`) : await getPublic("/v1/blocks?from=0&limit=20");
  void blocks;
  const id = h("input", { type: "text", name: "transaction", autocomplete: "off", spellcheck: "false", inputmode: "latin" });
  const verdict = h("div", { id: "verdict", role: "status", "aria-live": "polite" });
  const form = h("form", { class: "card", "aria-labelledby": "receipt-title" },
    h("h2", { id: "receipt-title" }, "Check a receipt"),
    h("p", { class: "meta" }, "The proof is checked here, in your browser, against the node's signed checkpoint."),
    field("Transaction id", id, "64 hexadecimal digits, as a receipt gives it"),
    h("button", { type: "submit" }, "Check"), verdict);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(id, "");
    mount(verdict);
    const value = id.value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(value)) return setError(id, "A transaction id is 64 hexadecimal digits.");
    try {
      const [proof, vkey] = await Promise.all([getPublic(`/v1/proofs/inclusion?id=${value}`), getText("/v1/checkpoint/key")]);
      const proven = await checkReceipt(value, proof, vkey.trim());
      let about = null;
      try {
        const tx = await getPublic(`/v1/transactions/${value}`);
        about = h("p", { class: "meta" }, `${tx.status ?? "committed"} at height ${tx.height}, ${tx.final ? "final (certified by a quorum of validators)" : "not final yet"}${tx.error ? `; refused: ${tx.error.code}` : ""}`);
      } catch {
        about = h("p", { class: "meta" }, "Its content concerns a patient: shown to her and those she lets see it.");
      }
      mount(verdict, h("p", { class: "verdict ok" }, "Verified"),
        h("p", {}, `Transaction ${value.slice(0, 12)}… is leaf ${proven.leafIndex} of the ${proven.size}-leaf log of ${proven.origin}, as its signed checkpoint says.`), about);
    } catch (error) {
      mount(verdict, h("p", { class: "verdict bad" }, "Not verified"), h("p", {}, error.message));
    }
  });
  const rows = [...latest.blocks].reverse().map((b) => h("tr", {},
    h("td", {}, String(b.header.height)), h("td", {}, when(b.header.time)), h("td", {}, String(b.header.transactionCount)),
    h("td", {}, b.final ? badge("final", "ok") : badge("not yet final", "warn")),
    h("td", { title: b.header.hash }, b.header.hash.slice(0, 16) + "…"), h("td", { title: b.header.proposer }, shortDID(b.header.proposer))));
  mount(main, 
    h("h1", {}, "Ledger"),
    h("p", {}, `Chain ${health.chainId}: height ${health.height}, final up to ${health.finalHeight}.`),
    form,
    h("h2", {}, "Latest blocks"),
    h("table", {}, h("caption", { class: "meta" }, "The newest first"),
      h("thead", {}, h("tr", {}, ["Height", "Time", "Transactions", "Finality", "Hash", "Proposer"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
  );
}
