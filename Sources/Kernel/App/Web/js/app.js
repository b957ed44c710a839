// The app shell: sign-in, one navigation adapting to the principal's roles, and the pages the
// kernel and each capability contribute (listed in /app/manifest.json; each a module exporting
// `render(main, context)`), routed by the URL's fragment (#/page).
import { Client, getPublic, ApiError, explain } from "./api.js";
import { h, field, notify, shortDID, setError, mount } from "./ui.js";
import * as session from "./session.js";
import * as backup from "./backup.js";
import { base64 } from "./bytes.js";

const state = { client: null, principal: null, pages: [], events: null };

/** What the principal is told live (server-sent events that concern her), in words. */
function announce(event) {
  switch (event.type) {
    case "record.written":
      if (event.patient === state.client?.did) notify(`A new record was added to your file: ${event.resourceType ?? "a record"}.`);
      break;
    case "break-glass":
    case "access":
      if (event.breakGlass || event.type === "break-glass") notify(`Break-the-glass: ${shortDID(event.reader ?? "")} read your record in an emergency: ${event.reason ?? ""}`, "bad");
      break;
    case "supply.recall-notice":
    case "supply.recall":
      notify(`Recall: ${event.product ?? event.gtin ?? "a medicine"}${event.lot ? `, lot ${event.lot}` : ""}${event.reason ? ` — ${event.reason}` : ""}`, "bad");
      break;
    case "identity.frozen":
      notify("Your key was frozen by two organisations (suspected theft).", "bad");
      break;
    case "identity.rotated":
      notify("Your keys were replaced.", "bad");
      break;
    default:
  }
}

function listen() {
  state.events?.abort();
  state.events = new AbortController();
  const signal = state.events.signal;
  state.client.events(announce, signal).catch(() => {
    /* the stream ended (sign-out, or the node went away): the next sign-in opens another */
  });
}

function rolesOf(principal) {
  if (!principal) return new Set(["visitor"]);
  const roles = new Set([principal.role, "signed-in"]);
  for (const duty of principal.duties ?? []) roles.add(duty);
  return roles;
}

function visiblePages() {
  const roles = rolesOf(state.principal);
  return state.pages.filter((p) => p.roles.some((r) => r === "*" || roles.has(r)));
}

function renderNav(active) {
  const nav = document.getElementById("nav");
  mount(nav, 
    h("ul", {}, visiblePages().filter((p) => p.nav !== false).map((p) =>
      h("li", {}, h("a", { href: `#/${p.id}`, "aria-current": p.id === active ? "page" : null }, p.title)))),
  );
  const who = document.getElementById("who");
  if (!state.client) {
    mount(who);
    return;
  }
  mount(who, 
    h("span", { title: state.client.did }, `${state.principal?.name ?? state.principal?.role ?? "unregistered"} · ${shortDID(state.client.did)} `),
    h("button", { class: "secondary", type: "button", onclick: () => signOut(false) }, "Sign out"),
  );
}

async function signOut(forgetDevice) {
  state.events?.abort();
  await session.signOut(forgetDevice);
  state.client = null;
  state.principal = null;
  location.hash = "#/";
  await route();
}

async function signedIn(identity) {
  state.client = new Client(identity);
  await state.client.signIn();
  try {
    state.principal = await getPublic(`/v1/principals/${identity.did}`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    state.principal = null;
  }
  if (state.principal) listen();
}

async function enter(identity) {
  await signedIn(identity);
  notify(`Signed in as ${shortDID(identity.did)}`);
  const home = `#/${visiblePages().find((p) => p.home)?.id ?? "home"}`;
  if (location.hash === home) await route();
  else location.hash = home; // the hashchange routes
}

function keepBox(id) {
  const keep = h("input", { type: "checkbox", id });
  return [keep, h("div", { class: "field row" }, keep, h("label", { for: id }, "Keep my keys on this device"))];
}

function signInPage(main) {
  const file = h("input", { type: "file", accept: ".key,.json,application/json", name: "keyfile" });
  const [keep, keepRow] = keepBox("keep-keys");
  const form = h("form", { class: "card", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in with your key file"),
    h("p", { class: "meta" }, "Your key file stays on this device: the app signs a challenge with it here; no secret is sent to any server."),
    field("Key file", file), keepRow,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(file, "");
    const chosen = file.files?.[0];
    if (!chosen) return setError(file, "Choose your key file (careledger key generate wrote it).");
    try {
      await enter(await session.importKeyFile(await chosen.text(), keep.checked));
    } catch (error) {
      setError(file, error instanceof ApiError ? `${error.code}: ${error.message}` : `This is not a usable key file: ${error.message}`);
    }
  });

  const backupFile = h("input", { type: "file", accept: ".json,application/json", name: "backupfile" });
  const backupPass = h("input", { type: "password", name: "backuppassphrase", autocomplete: "current-password" });
  const [keepRestored, keepRestoredRow] = keepBox("keep-restored");
  const restore = h("form", { class: "card", "aria-labelledby": "restore-title" },
    h("h2", { id: "restore-title" }, "Restore from a backup"),
    field("Backup file", backupFile), field("Passphrase", backupPass), keepRestoredRow,
    h("button", { type: "submit" }, "Restore and sign in"));
  restore.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(backupFile, "");
    setError(backupPass, "");
    const chosen = backupFile.files?.[0];
    if (!chosen) return setError(backupFile, "Choose the backup file you saved.");
    try {
      const text = await backup.open(await chosen.text(), backupPass.value);
      await enter(await session.importKeyFile(text, keepRestored.checked));
    } catch (error) {
      setError(backupPass, error.message);
    }
  });

  const pass = h("input", { type: "password", name: "newpassphrase", autocomplete: "new-password" });
  const created = h("div", { id: "created", role: "status" });
  const create = h("form", { class: "card", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New here? Create your identity"),
    h("p", { class: "meta" }, "Your keys are made in this browser. Save the encrypted backup it gives you: it is the only copy, and only your passphrase opens it."),
    field("Passphrase for your backup", pass, "12 characters or more"),
    h("button", { type: "submit" }, "Create my identity"), created);
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(pass, "");
    if (pass.value.length < 12) return setError(pass, "Choose a passphrase of 12 characters or more.");
    try {
      const keyFile = await backup.newKeyFile();
      const sealed = await backup.seal(keyFile, pass.value);
      const identity = await session.importKeyFile(keyFile, false);
      const client = new Client(identity);
      await client.submit("identity", "register", { role: "patient", encryptionKey: base64(identity.encryptionPublicKey) });
      const link = h("a", { class: "button", download: "careledger-key-backup.json", href: URL.createObjectURL(new Blob([sealed], { type: "application/json" })) }, "Save my encrypted backup");
      mount(created, h("p", {}, `You are registered as a patient: ${identity.did}`), link,
        h("button", { type: "button", class: "secondary", onclick: () => enter(identity) }, "Continue"));
      link.focus();
    } catch (error) {
      setError(pass, explain(error));
    }
  });
  mount(main, h("h1", {}, "Welcome to CareLedger"), form,
    h("p", {}, h("a", { href: "#/recover" }, "Lost your keys? Ask your guardians from this device.")), restore, create);
}

function homePage(main) {
  const pages = visiblePages().filter((p) => p.nav !== false);
  mount(main, 
    h("h1", {}, state.principal?.name ? `Hello, ${state.principal.name}` : "Your CareLedger"),
    state.principal ? null : h("p", { class: "notice bad" }, "This key is not registered on this ledger yet."),
    h("ul", {}, pages.map((p) => h("li", {}, h("a", { href: `#/${p.id}` }, p.title), p.summary ? ` — ${p.summary}` : ""))),
  );
}

// Each route draws into a view of its own: a page still loading when the user moves on (or when
// sign-in's own move to the home page is overtaken) writes into its detached view, never over the
// page she moved to.
let turn = 0;

async function route() {
  const mine = ++turn;
  const [id, ...rest] = (location.hash.replace(/^#\/?/, "") || "home").split("/");
  const outer = document.getElementById("main");
  const main = h("div", { class: "view" });
  mount(outer, main);
  renderNav(id);
  if (!state.client) {
    const page = state.pages.find((p) => p.id === id && (p.roles.includes("*") || p.roles.includes("visitor")));
    if (!page) return signInPage(main);
  }
  if (id === "home") return homePage(main);
  const page = visiblePages().find((p) => p.id === id);
  if (!page) {
    mount(main, h("h1", {}, "Not here"), h("p", {}, "This page does not exist, or is not for your role."));
    return;
  }
  mount(main, h("p", { class: "meta" }, "Loading…"));
  try {
    const module = await import(page.module);
    const replaceClient = (client) => {
      state.client = client;
      listen();
    };
    await module.render(main, { client: state.client, principal: state.principal, params: rest, page, replaceClient, enter });
  } catch (error) {
    mount(main, h("h1", {}, page.title), h("p", { class: "notice bad", role: "alert" }, explain(error)));
  }
  if (mine === turn) outer.focus({ preventScroll: true });
}

async function start() {
  state.pages = (await (await fetch("/app/manifest.json")).json()).pages;
  const kept = await session.restore();
  if (kept) {
    try {
      await signedIn(kept);
    } catch (error) {
      notify(`Could not sign in with the kept keys: ${error.message}`, "bad");
      await session.signOut(true);
      state.client = null;
    }
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
