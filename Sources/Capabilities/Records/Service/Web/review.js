// The privacy officer's queue: emergency (break-the-glass) reads by the organisation's people, each
// with its reason, to record as justified or unjustified (audit.review).
import { h, field, setError, mount, notify, when, shortDID } from "/app/js/ui.js";
import { explain } from "/app/js/api.js";

export async function render(main, context) {
  const { client, principal } = context;
  const organisation = principal.role === "organisation" ? client.did : principal.organisation;
  const list = (await client.get(`/v1/organisations/${organisation}/break-glass?status=pending`)).accesses ?? [];
  const rows = list.map((a) => {
    const note = h("input", { type: "text", name: `note-${a.patient}-${a.index}`, autocomplete: "off" });
    const decide = (outcome) => async (event) => {
      event.target.disabled = true;
      setError(note, "");
      try {
        const payload = { patient: a.patient, index: a.index, outcome };
        if (note.value.trim()) payload.note = note.value.trim();
        await client.submit("audit", "review", payload);
        notify(`Recorded as ${outcome}.`);
        await render(main, context);
      } catch (error) {
        setError(note, explain(error));
        event.target.disabled = false;
      }
    };
    return h("li", { class: "card", "data-review": `${a.patient}/${a.index}` },
      h("h3", {}, `${shortDID(a.reader)} read ${shortDID(a.patient)}'s record in an emergency`),
      h("p", {}, `Reason given: ${a.reason ?? "(none)"}`),
      h("p", { class: "meta" }, `${when(a.time)}; window until ${when(a.until)}; records: ${(a.records ?? []).join(", ") || "her timeline"}`),
      field("Note (optional)", note),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: decide("justified") }, "Justified"),
        h("button", { type: "button", class: "danger", onclick: decide("unjustified") }, "Unjustified")));
  });
  mount(main, h("h1", {}, "Break-the-glass reviews"),
    rows.length ? h("ul", { class: "plain" }, rows) : h("p", {}, "Nothing waits for review."));
}
