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

/** One block: its header, the node's checkpoint, the quorum certificate that makes it final, its transactions. */
async function blockPage(main, height) {
  const b = await getPublic(`/v1/blocks/${height}`);
  const header = b.header;
  const rows = [["Hash", header.hash], ["Previous", header.previousHash], ["Time", when(header.time)], ["Proposer", header.proposer],
    ["Log size", String(header.logSize)], ["Log root", header.logRoot], ["State root", header.stateRoot], ["Transactions", String(header.transactionCount)]];
  const votes = b.certificate?.votes ?? [];
  mount(main, h("h1", {}, `Block ${header.height}`),
    h("p", {}, b.final ? badge("final", "ok") : badge("not yet final", "warn"), h("a", { href: "#/ledger" }, " Back to the ledger")),
    h("table", {}, h("caption", { class: "meta" }, "The signed header"),
      h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "mono" }, v))))),
    h("h2", {}, "Finality certificate"),
    votes.length ? h("ul", {}, votes.map((v) => h("li", { title: v.validator }, `${shortDID(v.validator)} signed hash ${v.blockHash.slice(0, 16)}… and state root ${v.stateRoot.slice(0, 16)}…`)))
      : h("p", {}, "No certificate on this node yet (a single node's blocks are final at commit; a consortium's when a quorum votes)."),
    h("h2", {}, "Checkpoint"), h("pre", {}, b.checkpoint),
    h("h2", {}, "Transactions"),
    h("ul", {}, (b.transactions ?? []).map((t) => h("li", {}, h("a", { href: `#/ledger/tx/${t.id}` }, t.id.slice(0, 16) + "…"), ` leaf ${t.leafIndex}, ${t.status}`))));
}

export async function render(main, context = {}) {
  const [kind, value] = context.params ?? [];
  if (kind === "block") return blockPage(main, value);
  return overview(main, kind === "tx" ? value : "");
}

async function overview(main, prefill) {
  const health = await getPublic("/healthz");
  const from = Math.max(0, health.height - 19);
  const latest = from > 0 ? await getPublic(`/v1/blocks?from=${from}&limit=20`) : await getPublic("/v1/blocks?from=0&limit=20");
  const id = h("input", { type: "text", name: "transaction", autocomplete: "off", spellcheck: "false", inputmode: "latin", value: prefill });
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
  const evidence = (await getPublic("/v1/consensus/evidence")).evidence ?? [];
  const rows = [...latest.blocks].reverse().map((b) => h("tr", {},
    h("td", {}, h("a", { href: `#/ledger/block/${b.header.height}` }, String(b.header.height))), h("td", {}, when(b.header.time)), h("td", {}, String(b.header.transactionCount)),
    h("td", {}, b.final ? badge("final", "ok") : badge("not yet final", "warn")),
    h("td", { title: b.header.hash }, b.header.hash.slice(0, 16) + "…"), h("td", { title: b.header.proposer }, shortDID(b.header.proposer))));
  mount(main, 
    h("h1", {}, "Ledger"),
    h("p", {}, `Chain ${health.chainId}: height ${health.height}, final up to ${health.finalHeight}.`),
    form,
    h("h2", {}, "Misbehaviour seen"),
    evidence.length ? h("ul", {}, evidence.map((e) => h("li", {}, badge(e.kind, "bad"), ` height ${e.height}, ${shortDID(e.validator)}: ${e.detail}`)))
      : h("p", {}, "None: no refused proposal, no equivocation, no fork."),
    h("h2", {}, "Latest blocks"),
    h("table", {}, h("caption", { class: "meta" }, "The newest first"),
      h("thead", {}, h("tr", {}, ["Height", "Time", "Transactions", "Finality", "Hash", "Proposer"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
  );
}
