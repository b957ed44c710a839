// Claims in the app (GET /v1/claims): the patient's explanation of each claim in plain words (what was
// charged, what the plan allowed, what she pays and why, what the plan pays) with an appeal; the
// insurer's work queue, where a payment is recorded; the provider's claims and their status.
import { h, field, setError, mount, notify, badge, when, shortDID } from "/app/js/ui.js";
import { explain, getPublic } from "/app/js/api.js";

const WHY = {
  1: "your deductible", 2: "your coinsurance share", 3: "your copay",
  18: "already claimed: the same service, provider and day was billed before",
  26: "the service was before your coverage began", 27: "the service was after your coverage ended",
  29: "the claim was filed too late", 31: "you are not a member of this plan",
  45: "the charge is more than the plan's fee for it", 96: "the plan does not cover this service",
  197: "the service needed prior authorisation, and there was none",
};
const DENIALS = new Set([18, 26, 27, 29, 31, 96, 197]);
const STATUS = {
  queued: ["waiting for the insurer", ""], pended: ["on hold", "warn"], adjudicated: ["decided", "ok"], paid: ["paid", "ok"],
  appealed: ["appealed: to be decided again", "warn"],
};

function money(minor, claim) {
  const digits = claim.minorDigits ?? 2;
  const text = String(minor).padStart(digits + 1, "0");
  return `${digits ? `${text.slice(0, -digits)}.${text.slice(-digits)}` : text} ${claim.currency ?? ""}`.trim();
}

/** One adjudicated line in words a patient understands. */
export function lineWords(line, claim) {
  const dated = (claim.lines ?? []).find((l) => l.sequence === line.sequence);
  const on = dated ? `On ${dated.date}` : `Line ${line.sequence}`;
  if (line.reasons.length === 1 && DENIALS.has(line.reasons[0])) {
    return `${on}: ${money(line.submitted, claim)} charged, not paid: ${WHY[line.reasons[0]]}.`;
  }
  const parts = [[line.deductible, 1], [line.copay, 3], [line.coinsurance, 2]].filter(([amount]) => amount > 0)
    .map(([amount, code]) => `${money(amount, claim)} ${WHY[code]}`);
  const share = line.deductible + line.copay + line.coinsurance;
  return `${on}: ${money(line.submitted, claim)} charged; the plan allows ${money(line.eligible, claim)}`
    + `${line.reasons.includes(45) ? ` (${WHY[45]})` : ""}; you pay ${money(share, claim)}`
    + `${parts.length ? ` (${parts.join(", ")})` : ""}; the plan pays ${money(line.benefit, claim)}.`;
}

async function names(claims) {
  const dids = [...new Set(claims.flatMap((c) => [c.provider, c.insurer, c.patient]))];
  const out = {};
  await Promise.all(dids.map(async (did) => {
    try {
      out[did] = (await getPublic(`/v1/principals/${did}`)).name ?? shortDID(did);
    } catch {
      out[did] = shortDID(did);
    }
  }));
  return out;
}

function statusBadge(claim) {
  const [words, kind] = STATUS[claim.status] ?? [claim.status, ""];
  return badge(words, kind);
}

async function myClaims(main, context) {
  const { client } = context;
  const claims = (await client.get("/v1/claims")).claims ?? [];
  const who = await names(claims);
  mount(main, h("h1", {}, "My claims"),
    claims.length ? claims.map((claim) => {
      const reason = h("input", { type: "text", name: `appeal-${claim.id}`, autocomplete: "off" });
      const appeal = h("form", { class: "row", "aria-label": `Appeal claim ${claim.id}` },
        field("Why you appeal (10 characters or more)", reason), h("button", { type: "submit", class: "secondary" }, "Appeal"));
      appeal.addEventListener("submit", async (event) => {
        event.preventDefault();
        setError(reason, "");
        if (reason.value.trim().length < 10) return setError(reason, "Say why, in 10 characters or more.");
        try {
          await client.submit("claims", "appeal", { claim: claim.id, reason: reason.value.trim() });
          notify("Appealed: your insurer decides it again.");
          await myClaims(main, context);
        } catch (error) {
          setError(reason, explain(error));
        }
      });
      const adjudication = claim.adjudication;
      return h("section", { class: "card", "aria-labelledby": `claim-${claim.id}`, "data-claim": claim.id },
        h("h2", { id: `claim-${claim.id}` }, `Claim ${claim.id} from ${who[claim.provider]} `, statusBadge(claim)),
        h("p", { class: "meta" }, `Sent to ${who[claim.insurer]} (${claim.plan}) ${when(claim.time)}`),
        claim.status === "pended" ? h("p", { class: "notice warn" }, "On hold: ", [...(claim.pended?.missing ?? []), ...(claim.pended?.signals ?? [])].join("; ")) : null,
        adjudication ? h("ul", {}, adjudication.lines.map((line) => h("li", {}, lineWords(line, claim)))) : h("p", {}, "Not decided yet."),
        adjudication ? h("p", {}, `The plan pays ${money(adjudication.benefit, claim)} in all; ${money(claim.paid ?? 0, claim)} paid so far.`) : null,
        ["adjudicated", "paid"].includes(claim.status) ? appeal : null);
    }) : h("p", {}, "No claim names you yet."));
}

async function workQueue(main, context) {
  const { client } = context;
  const claims = (await client.get("/v1/claims")).claims ?? [];
  const who = await names(claims);
  const me = client.did;
  const row = (claim) => {
    const owed = (claim.adjudication?.benefit ?? 0) - (claim.paid ?? 0);
    let action = null;
    if (claim.insurer === me && claim.status === "adjudicated" && owed > 0) {
      const reference = h("input", { type: "text", name: `reference-${claim.id}`, autocomplete: "off" });
      action = h("form", { class: "row", "aria-label": `Record the payment of claim ${claim.id}` },
        field("Payment reference", reference), h("button", { type: "submit" }, `Record payment of ${money(owed, claim)}`));
      action.addEventListener("submit", async (event) => {
        event.preventDefault();
        setError(reference, "");
        if (!reference.value.trim()) return setError(reference, "The transfer's reference.");
        try {
          await client.submit("claims", "pay", { claim: claim.id, amount: owed, reference: reference.value.trim() });
          notify(`Claim ${claim.id} paid.`);
          await workQueue(main, context);
        } catch (error) {
          setError(reference, explain(error));
        }
      });
    }
    const why = claim.status === "pended" ? [...(claim.pended?.missing ?? []), ...(claim.pended?.signals ?? [])].join("; ") : "";
    return h("tr", { "data-claim": claim.id },
      h("td", {}, claim.id), h("td", {}, claim.insurer === me ? who[claim.provider] : who[claim.insurer]), h("td", { title: claim.patient }, shortDID(claim.patient)),
      h("td", {}, statusBadge(claim), why ? h("div", { class: "meta" }, why) : null),
      h("td", {}, claim.adjudication ? money(claim.adjudication.benefit, claim) : "—"), h("td", {}, money(claim.paid ?? 0, claim)), h("td", {}, action));
  };
  const table = (list, party) => list.length
    ? h("table", {}, h("thead", {}, h("tr", {}, ["Claim", party, "Patient", "Status", "Benefit", "Paid", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map(row)))
    : h("p", {}, "None.");
  const insured = claims.filter((c) => c.insurer === me), submitted = claims.filter((c) => c.provider === me);
  const order = ["pended", "appealed", "queued", "adjudicated", "paid"];
  insured.sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status));
  mount(main, h("h1", {}, "Claims"),
    h("section", { "aria-labelledby": "queue-title" }, h("h2", { id: "queue-title" }, "To decide and pay (insurer)"), table(insured, "Provider")),
    h("section", { "aria-labelledby": "sent-title" }, h("h2", { id: "sent-title" }, "Submitted by us (provider)"), table(submitted, "Insurer")));
}

export async function render(main, context) {
  return context.page.id === "my-claims" ? myClaims(main, context) : workQueue(main, context);
}
