// The app's small component kit. Text goes into the page as text (textContent), never as HTML, so
// whatever a record holds is shown, not run.

/** An element: h("p", {class: "meta"}, "text", child…); attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children (arrays flattened; null, undefined and false left out). */
export function mount(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return el;
}

let fieldCounter = 0;

/** A labelled form field; `control` is an input, select or textarea element. */
export function field(label, control, hint = null) {
  const id = control.id || `f${++fieldCounter}`;
  control.id = id;
  const error = h("div", { class: "error", id: `${id}-error`, role: "alert" });
  control.setAttribute("aria-describedby", `${id}-error`);
  return h("div", { class: "field" }, h("label", { for: id }, label), hint ? h("div", { class: "meta" }, hint) : null, control, error);
}

export function setError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (error) error.textContent = message ?? "";
  control.setAttribute("aria-invalid", message ? "true" : "false");
}

/** A notice at the top of the page (status messages are announced to screen readers). */
export function notify(message, kind = "ok") {
  const box = document.getElementById("notices");
  const note = h("div", { class: `notice ${kind}` }, message);
  box.append(note);
  setTimeout(() => note.remove(), 8000);
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function when(ms) {
  return ms ? new Date(Number(ms)).toLocaleString() : "";
}

/** A short form of a did for people (the whole one in its title). */
export function shortDID(did) {
  return did && did.length > 24 ? `${did.slice(0, 14)}…${did.slice(-6)}` : did;
}
