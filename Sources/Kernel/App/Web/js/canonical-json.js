// CareLedger's canonical JSON (LedgerCore/JSONValue.swift): no whitespace, object members in UTF-8
// byte order of their keys, integers only (exact 64-bit: a BigInt past 2^53), strings escaped as
// the Swift encoder does (only ", \ and control characters; everything else as UTF-8).
import { utf8 } from "./bytes.js";

const MAX = 9223372036854775807n, MIN = -9223372036854775808n;

function compareUTF8(a, b) {
  const x = utf8(a), y = utf8(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function string(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c < 0x20) out += "\\u00" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

/** The canonical text of a value (objects, arrays, strings, booleans, null, integers as Number or BigInt). */
export function canonical(value) {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "bigint") {
    if (value > MAX || value < MIN) throw new Error("integer out of 64-bit range");
    return value.toString();
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error("only integers are canonical (exact to 2^53; use a BigInt past it)");
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") return string(value);
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort(compareUTF8);
    return "{" + keys.map((k) => string(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  throw new Error("not a JSON value");
}

export const canonicalBytes = (value) => utf8(canonical(value));

/** JSON.parse with exact integers: an integer beyond 2^53 becomes a BigInt. */
export function parse(text) {
  let i = 0;
  const fail = (what) => {
    throw new Error(`JSON: ${what} at ${i}`);
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  function value() {
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      const out = {};
      space();
      if (text[i] === "}") return i++, out;
      for (;;) {
        space();
        if (text[i] !== '"') fail("expected a key");
        const k = str();
        space();
        if (text[i++] !== ":") fail("expected :");
        out[k] = value();
        space();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") return i++, out;
        fail("expected , or }");
      }
    }
    if (c === "[") {
      i++;
      const out = [];
      space();
      if (text[i] === "]") return i++, out;
      for (;;) {
        out.push(value());
        space();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") return i++, out;
        fail("expected , or ]");
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) return (i += word.length), v;
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail("unexpected character");
    i += m[0].length;
    if (m[2] || m[3]) return Number(m[0]);
    const n = BigInt(m[0]);
    return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n;
  }
  function str() {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (text[i] !== '"') fail("unterminated string");
    i++;
    return JSON.parse(text.slice(start, i));
  }
  const out = value();
  space();
  if (i !== text.length) fail("trailing characters");
  return out;
}
