// FHIR R4 resources for a person: a title and a few lines in words, built as text nodes only.
import { h } from "/app/js/ui.js";

const text = (cc) => cc?.text ?? cc?.coding?.[0]?.display ?? cc?.coding?.[0]?.code ?? "";
const date = (d) => (d ? new Date(d).toLocaleDateString() : "");
function quantity(q) {
  if (!q) return "";
  return `${q.value ?? ""} ${q.unit ?? q.code ?? ""}`.trim();
}

const RENDERERS = {
  Condition: (r) => [text(r.code) || "A condition", [text(r.clinicalStatus) && `status: ${text(r.clinicalStatus)}`, r.onsetDateTime && `since ${date(r.onsetDateTime)}`]],
  Observation: (r) => [text(r.code) || "An observation", [
    r.valueQuantity ? quantity(r.valueQuantity) : r.valueString ?? text(r.valueCodeableConcept) ?? (r.valueBoolean !== undefined ? String(r.valueBoolean) : ""),
    r.effectiveDateTime && date(r.effectiveDateTime), r.status && `status: ${r.status}`]],
  MedicationRequest: (r) => [text(r.medicationCodeableConcept) || "A prescription", [r.dosageInstruction?.[0]?.text, r.authoredOn && `prescribed ${date(r.authoredOn)}`, r.status && `status: ${r.status}`]],
  MedicationDispense: (r) => [text(r.medicationCodeableConcept) || "A dispensed medicine", [r.quantity && quantity(r.quantity), r.whenHandedOver && `handed over ${date(r.whenHandedOver)}`]],
  Immunization: (r) => [text(r.vaccineCode) || "A vaccination", [r.occurrenceDateTime && date(r.occurrenceDateTime), r.status && `status: ${r.status}`]],
  AllergyIntolerance: (r) => [`Allergy: ${text(r.code) || "unspecified"}`, [r.criticality && `criticality: ${r.criticality}`, text(r.reaction?.[0]?.manifestation?.[0])]],
  DiagnosticReport: (r) => [text(r.code) || "A report", [r.conclusion, r.issued && `issued ${date(r.issued)}`, r.status && `status: ${r.status}`]],
  Encounter: (r) => [text(r.type?.[0]) || `A visit (${r.class?.display ?? r.class?.code ?? "encounter"})`, [r.period?.start && `${date(r.period.start)}`, r.status && `status: ${r.status}`]],
  Procedure: (r) => [text(r.code) || "A procedure", [r.performedDateTime && date(r.performedDateTime), r.status && `status: ${r.status}`]],
};

/** A card for one decrypted resource: title, lines, and its raw JSON one click away. */
export function resourceCard(resource, meta) {
  const render = RENDERERS[resource.resourceType] ?? ((r) => [r.resourceType, [text(r.code)]]);
  const [title, lines] = render(resource);
  return h("article", { class: "card" },
    h("h3", {}, String(title)),
    h("ul", {}, lines.filter(Boolean).map((l) => h("li", {}, String(l)))),
    h("p", { class: "meta" }, meta),
    h("details", {}, h("summary", {}, "Raw FHIR JSON"), h("pre", {}, JSON.stringify(resource, null, 2))));
}
