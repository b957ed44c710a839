// The one API client of the app: every page talks to the node through it, over the documented /v1
// and /fhir APIs. The bearer token travels in the Authorization header only, never in a URL.
import { base64, utf8 } from "./bytes.js";
import { sign } from "./keys.js";
import { signTransaction, freshNonce } from "./transaction.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

/** An error in words for the page: the node's code and message, or the error's own message. */
export function explain(error) {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : String(error?.message ?? error);
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = body?.error ?? {};
    const issue = body?.issue?.[0];
    throw new ApiError(response.status, error.code ?? issue?.code ?? `http_${response.status}`, error.message ?? issue?.diagnostics ?? text.slice(0, 200));
  }
  return body;
}

/** Unauthenticated JSON GET (public routes: health, principals, blocks, proofs). */
export async function getPublic(path) {
  return answer(await fetch(path, { headers: { Accept: "application/json" } }));
}

export async function getText(path) {
  const response = await fetch(path);
  if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, await response.text());
  return response.text();
}

/** A signed-in principal's client: signs the sign-in challenge and every transaction in the browser. */
export class Client {
  constructor(identity) {
    this.identity = identity;
    this.token = null;
    this.chainId = null;
  }

  get did() {
    return this.identity.did;
  }

  async chain() {
    if (!this.chainId) this.chainId = (await getPublic("/healthz")).chainId;
    return this.chainId;
  }

  async signIn() {
    const chain = await this.chain();
    const { challenge } = await answer(await fetch("/v1/auth/challenge", { method: "POST" }));
    const signature = await sign(this.identity.signing, utf8(`careledger-auth\n${chain}\n${challenge}\n`));
    const body = { did: this.identity.did, challenge, signature: base64(signature) };
    if (this.identity.keyDID !== this.identity.did) body.key = this.identity.keyDID;
    const granted = await answer(await fetch("/v1/auth/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
    this.token = granted.token;
    return granted;
  }

  async request(method, path, body = null, retry = true) {
    if (!this.token) await this.signIn();
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== null) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === null ? undefined : JSON.stringify(body) });
    if (response.status === 401 && retry) {
      this.token = null;
      return this.request(method, path, body, false);
    }
    return answer(response);
  }

  get(path) {
    return this.request("GET", path);
  }

  /** Signs and submits a transaction; answers its committed receipt, or throws the contract's refusal. */
  async submit(contract, action, payload) {
    const tx = await signTransaction(
      { chainId: await this.chain(), author: this.identity.publicKey, nonce: freshNonce(), contract, action, payload },
      this.identity.signing,
    );
    const receipt = await answer(await fetch("/v1/transactions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ raw: tx.raw }) }));
    if (receipt.status === "failed") throw new ApiError(409, receipt.error?.code ?? "failed", receipt.error?.message);
    return receipt;
  }

  /** Server-sent events that concern the principal (`GET /v1/events`), through fetch so the token stays in a header. */
  async events(onEvent, signal) {
    if (!this.token) await this.signIn();
    const response = await fetch("/v1/events", { headers: { Authorization: `Bearer ${this.token}`, Accept: "text/event-stream" }, signal });
    if (!response.ok) return answer(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data) {
          try {
            onEvent(JSON.parse(data));
          } catch {
            /* a comment or keep-alive */
          }
        }
      }
    }
  }
}
