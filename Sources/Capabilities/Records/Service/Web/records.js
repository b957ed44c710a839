// The patient's pages: her timeline (decrypted here, in the browser), who may see what (consents:
// grant, with the keys of her records shared with the grantee, and revoke) and who looked (the access log).
import { h, field, setError, notify, badge, when, shortDID, mount } from "/app/js/ui.js";
import { getPublic, explain } from "/app/js/api.js";
import { fromBase64 } from "/app/js/bytes.js";
import { wrapKey } from "/app/js/hpke.js";
import { openReads, upload, keyEnvelope } from "/app/js/sealing.js";
import { resourceCard } from "./fhir-render.js";

async function timeline(main, { client }) {
  performance.mark("timeline-start");
  const answer = await client.get(`/v1/patients/${client.did}/records`);
  const opened = await openReads(answer.records ?? [], client.identity);
  const byType = new Map();
  for (const item of opened.sort((a, b) => b.read.time - a.read.time)) {
    const type = item.read.resourceType;
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(item);
  }
  mount(main, h("h1", {}, "My health record"),
    opened.length ? null : h("p", {}, "No records yet."),
    [...byType.entries()].map(([type, items]) => h("section", { "aria-labelledby": `t-${type}` },
      h("h2", { id: `t-${type}` }, `${type} (${items.length})`),
      items.map(({ read, resource }) => {
        const card = resourceCard(resource, `version ${read.version}, written ${when(read.time)} by ${shortDID(read.author)}`);
        card.append(eraseButton(client, read, card));
        return card;
      }))));
  // Fetched, decrypted, rendered and laid out (the next frame): what `scripts/bench-app` times.
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  performance.measure("timeline", "timeline-start");
}

/** Erasure: asked, confirmed, done on every node; then her signed receipt to keep. */
function eraseButton(client, read, card) {
  const button = h("button", { type: "button", class: "danger", "data-erase": read.recordId }, "Erase this record…");
  button.addEventListener("click", async () => {
    if (!window.confirm(`Erase ${read.resourceType} ${read.recordId} for good? Every node destroys its keys and content; the ledger keeps only that it was erased.`)) return;
    button.disabled = true;
    try {
      await client.submit("records", "erase", { recordId: read.recordId });
      const receipt = await client.get(`/v1/records/${encodeURIComponent(read.recordId)}/erasure`);
      const link = h("a", { class: "button", download: `erasure-${read.recordId}.json`,
        href: URL.createObjectURL(new Blob([JSON.stringify(receipt, null, 2)], { type: "application/json" })) }, "Download the signed erasure receipt");
      mount(card, h("h3", {}, `${read.resourceType} ${read.recordId}: erased`),
        h("p", {}, `Erased at height ${receipt.receipt?.erasedAtHeight ?? "?"}: its keys and content are destroyed on every node.`), link);
      notify("Erased.");
    } catch (error) {
      notify(`${error.code ?? "error"}: ${error.message}`, "bad");
      button.disabled = false;
    }
  });
  return button;
}

function grantSentence(g) {
  const what = g.resourceTypes?.includes("*") ? "all your records" : [...(g.resourceTypes ?? []), ...(g.categories ?? [])].join(", ");
  const verb = g.decision === "deny" ? "may never see" : "may see";
  const until = g.end ? ` until ${when(g.end)}` : "";
  return `${g.granteeName ?? shortDID(g.grantee)} ${verb} ${what} for ${(g.purposes ?? []).join(" and ")}${until}${g.delegate ? ", and acts for you" : ""}.`;
}

/** Shares the keys of her current versions of `types` with a new grantee (as `careledger consent grant` does). */
async function shareKeys(client, grantee, types) {
  const principal = await getPublic(`/v1/principals/${grantee}`);
  const granteeKey = fromBase64(principal.encryptionKey);
  const answer = await client.get(`/v1/patients/${client.did}/records`);
  let shared = 0;
  for (const { read, contentKey } of await openReads(answer.records ?? [], client.identity)) {
    if (!types.includes("*") && !types.includes(read.resourceType)) continue;
    const { blob, hash } = await keyEnvelope({ [grantee]: await wrapKey(contentKey, granteeKey, read.context) });
    await upload(client, hash, blob);
    try {
      await client.submit("records", "share", { recordId: read.recordId, version: read.version, recipients: [grantee], keys: hash });
      shared++;
    } catch (error) {
      if (error.code !== "already_shared") throw error;
    }
  }
  return shared;
}

async function consents(main, context) {
  const { client } = context;
  const list = (await client.get(`/v1/patients/${client.did}/consents`)).consents ?? [];
  for (const g of list) {
    try {
      g.granteeName = (await getPublic(`/v1/principals/${g.grantee}`)).name;
    } catch {
      /* a did only */
    }
  }
  const grantee = h("input", { type: "text", name: "grantee", autocomplete: "off", spellcheck: "false" });
  const purpose = h("select", { name: "purpose" }, ["treatment", "payment", "research"].map((p) => h("option", { value: p }, p)));
  // What: everything, or some of the node's consent categories, and any resource types besides.
  const categories = (await getPublic("/v1/consent/categories")).categories ?? [];
  const everything = h("input", { type: "checkbox", name: "everything", id: "grant-everything", checked: true });
  const boxes = categories.map((c) => h("input", { type: "checkbox", name: "category", value: c.name, id: `grant-category-${c.name}` }));
  const types = h("input", { type: "text", name: "types", autocomplete: "off" });
  const what = h("fieldset", { class: "field" },
    h("legend", {}, "What"),
    h("div", { class: "row" }, everything, h("label", { for: everything.id }, "All my records")),
    categories.map((c, i) => h("div", { class: "row" }, boxes[i],
      h("label", { for: boxes[i].id }, `${c.name[0].toUpperCase()}${c.name.slice(1)}`, h("span", { class: "meta" }, ` (${c.resourceTypes.join(", ")})`)))),
    field("Other resource types (optional)", types, "Separated by commas, e.g. Condition, Immunization"));
  const until = h("input", { type: "date", name: "until" });
  const form = h("form", { class: "card", "aria-labelledby": "grant-title" },
    h("h2", { id: "grant-title" }, "Let someone see your records"),
    field("Who", grantee, "An organisation or care team by name, or anyone by did (did:key:z…)"),
    field("Why", purpose),
    what,
    field("Until (optional)", until, "The grant ends at the start of this day"),
    h("button", { type: "submit" }, "Grant"));
  // Choosing a category or a type means not everything.
  for (const box of boxes) box.addEventListener("change", () => { if (box.checked) everything.checked = false; });
  types.addEventListener("input", () => { if (types.value.trim()) everything.checked = false; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(grantee, "");
    setError(types, "");
    setError(until, "");
    let did = grantee.value.trim();
    const chosen = everything.checked ? [] : boxes.filter((b) => b.checked).map((b) => b.value);
    const typeList = everything.checked ? ["*"] : types.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (!did) return setError(grantee, "Say who: a name or a did.");
    if (!did.startsWith("did:")) {
      const found = did.length < 2 ? [] : (await getPublic(`/v1/principals?name=${encodeURIComponent(did)}`)).principals ?? [];
      if (found.length !== 1) {
        return setError(grantee, found.length ? `Several match: ${found.map((p) => `${p.name} (${shortDID(p.did)})`).join(", ")}. Be more precise, or give the did.` : "Nobody of that name is registered: give their did.");
      }
      did = found[0].did;
    }
    if (!/^did:key:z[1-9A-HJ-NP-Za-km-z]+$/.test(did)) return setError(grantee, "Enter a did:key (it starts with did:key:z).");
    if (!typeList.length && !chosen.length) return setError(types, "Choose all your records, a category, or name a resource type.");
    const bad = typeList.find((t) => t !== "*" && !/^[A-Z][A-Za-z]{1,63}$/.test(t));
    if (bad) return setError(types, `${bad} is not a FHIR resource type (such as Condition or Immunization).`);
    const end = until.value ? new Date(`${until.value}T00:00:00`).getTime() : null;
    if (end !== null && !(end > Date.now())) return setError(until, "A day in the future.");
    try {
      await getPublic(`/v1/principals/${did}`);
    } catch {
      return setError(grantee, "Nobody is registered under this did.");
    }
    try {
      const payload = { grantee: did, purposes: [purpose.value], decision: "permit" };
      if (typeList.length) payload.resourceTypes = typeList;
      if (chosen.length) payload.categories = chosen;
      if (end !== null) payload.end = end;
      await client.submit("consent", "grant", payload);
      const covered = [...typeList, ...categories.filter((c) => chosen.includes(c.name)).flatMap((c) => c.resourceTypes)];
      const shared = purpose.value === "treatment" ? await shareKeys(client, did, covered) : 0;
      notify(`Granted; the keys of ${shared} records shared.`);
      await consents(main, context);
    } catch (error) {
      setError(grantee, explain(error));
    }
  });
  const active = list.filter((g) => g.status === "active");
  mount(main, h("h1", {}, "Who may see what"),
    active.length ? h("ul", { class: "consents" }, active.map((g) => h("li", { class: "card" },
      h("p", {}, grantSentence(g)),
      h("button", { class: "danger", type: "button", "data-grant": g.id, onclick: async (event) => {
        if (!window.confirm(`Revoke: ${grantSentence(g)}`)) return;
        event.target.disabled = true;
        try {
          await client.submit("consent", "revoke", { grant: g.id });
          notify("Revoked: it took effect at once.");
          await consents(main, context);
        } catch (error) {
          notify(`${error.code ?? "error"}: ${error.message}`, "bad");
          event.target.disabled = false;
        }
      } }, "Revoke")))) : h("p", {}, "Nobody has access to your records but you."),
    form);
}

async function accessLog(main, { client }) {
  const events = (await client.get(`/v1/patients/${client.did}/access-log`)).events ?? [];
  const rows = [...events].reverse().map((e) => {
    if (e.kind === "key") {
      return h("tr", {}, h("td", {}, when(e.time)), h("td", {}, badge(`key ${e.event}`, "warn")), h("td", {}, (e.by ?? []).map(shortDID).join(", ")), h("td", {}, e.reason ?? ""));
    }
    const kind = e.breakGlass ? badge("break-the-glass", "bad") : e.outcome === "permit" ? badge("read", "ok") : badge("denied", "bad");
    const review = e.breakGlass ? ` · review: ${e.review?.outcome ?? "pending"}` : "";
    return h("tr", {}, h("td", {}, when(e.time)), h("td", {}, kind), h("td", { title: e.reader }, shortDID(e.reader)),
      h("td", {}, `${e.purpose ?? ""}${e.reason ? ` — ${e.reason}` : ""}${review}`));
  });
  mount(main, h("h1", {}, "Who looked"),
    h("table", {}, h("caption", { class: "meta" }, "Every access to your records, newest first: reads, refusals, emergencies, and what happened to your keys"),
      h("thead", {}, h("tr", {}, ["When", "What", "Who", "Why"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows)));
}

/** The accounting of disclosures (45 CFR 164.528): what was released, to whom, why, newest first. */
async function disclosures(main, { client }) {
  const list = (await client.get(`/v1/patients/${client.did}/disclosures`)).disclosures ?? [];
  mount(main, h("h1", {}, "Disclosures"),
    list.length ? h("table", {}, h("caption", { class: "meta" }, "Every release of your data, with its recipient and purpose"),
      h("thead", {}, h("tr", {}, ["Date", "To", "Why", "What"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map((d) => h("tr", {},
        h("td", {}, d.date ?? ""),
        h("td", { title: d.recipient?.did ?? "" }, `${shortDID(d.recipient?.did ?? "")}${d.recipient?.organisationName ? ` (${d.recipient.organisationName})` : ""}`),
        h("td", {}, d.breakGlass ? [badge("break-the-glass", "bad"), ` ${d.reason ?? ""}`] : d.purpose ?? ""),
        h("td", {}, (d.what ?? []).map((w) => `${w.resourceType}/${w.recordId}`).join(", "))))))
      : h("p", {}, "Nothing of yours was released to anyone."));
}

const PAGES = { timeline, consents, "access-log": accessLog, disclosures };

export async function render(main, context) {
  return PAGES[context.page.id](main, context);
}
