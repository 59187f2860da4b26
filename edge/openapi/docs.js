// The API docs page: reads /openapi.json, lists its operations by tag, and
// lets the reader send each one to this node. No dependencies, no CDN.
"use strict";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function resolve(doc, s) {
  if (s && s.$ref) return resolve(doc, s.$ref.split("/").slice(1).reduce((o, k) => o[k], doc));
  return s;
}

// skeleton makes an example body from a schema.
function skeleton(doc, s, depth) {
  s = resolve(doc, s);
  if (!s || depth > 4) return null;
  if (s.enum) return s.enum[0];
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (t) {
    case "object": {
      const o = {};
      for (const [k, v] of Object.entries(s.properties || {})) {
        if ((s.required || []).includes(k)) o[k] = skeleton(doc, v, depth + 1);
      }
      return o;
    }
    case "array": return [];
    case "integer": case "number": return 1;
    case "boolean": return false;
    default: return "";
  }
}

function operation(doc, path, method, op) {
  const params = op.parameters || [];
  const inputs = {};
  const form = el("div");
  for (const p of params) {
    const i = el("input", { size: 40, placeholder: p.in + (p.required ? ", required" : "") });
    inputs[p.name] = [p, i];
    form.append(el("label", {}, p.name + " ", i));
  }
  let body = null;
  if (op.requestBody) {
    const schema = op.requestBody.content["application/json"].schema;
    body = el("textarea");
    body.value = JSON.stringify(skeleton(doc, schema, 0), null, 2);
    form.append(el("label", {}, "body (JSON)", body));
  }
  const out = el("pre");
  const send = el("button", { type: "button" }, "Send");
  send.addEventListener("click", async () => {
    let url = path;
    const q = new URLSearchParams();
    const headers = {};
    for (const [name, [p, i]] of Object.entries(inputs)) {
      if (!i.value) continue;
      if (p.in === "path") url = url.replace("{" + name + "}", encodeURIComponent(i.value));
      else if (p.in === "query") q.set(name, i.value);
      else if (p.in === "header") headers[name] = i.value;
    }
    const auth = document.getElementById("auth").value.trim();
    if (auth) headers["Authorization"] = auth;
    const init = { method: method.toUpperCase(), headers };
    if (body) { headers["Content-Type"] = "application/json"; init.body = body.value; }
    if ([...q].length) url += "?" + q;
    out.textContent = "…";
    try {
      const res = await fetch(url, init);
      const text = await res.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      const hs = ["content-type", "location", "etag", "retry-after", "ratelimit-remaining"]
        .filter(h => res.headers.get(h)).map(h => h + ": " + res.headers.get(h)).join("\n");
      out.textContent = res.status + " " + res.statusText + "\n" + hs + "\n\n" + shown;
    } catch (e) {
      out.textContent = String(e);
    }
  });
  const secured = !(op.security && op.security.length === 0);
  const summary = el("summary", {}, el("span", { class: "m " + method.toUpperCase() }, method.toUpperCase()), " ",
    el("code", {}, path), " ", op.summary || "", secured ? el("span", { class: "lock" }, "needs a token") : "");
  const codes = Object.keys(op.responses).join(", ");
  return el("details", {}, summary, el("p", {}, "Answers: " + codes), form, send, out);
}

async function main() {
  const box = document.getElementById("ops");
  let doc;
  try {
    doc = await (await fetch("/openapi.json")).json();
  } catch (e) {
    box.textContent = "Could not load /openapi.json: " + e;
    return;
  }
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      (byTag[tag] = byTag[tag] || []).push(operation(doc, path, method, op));
    }
  }
  box.textContent = "";
  if (doc.info && doc.info.description) box.append(el("p", {}, doc.info.description));
  for (const [tag, ops] of Object.entries(byTag)) {
    box.append(el("h2", {}, tag), ...ops);
  }
}

document.addEventListener("DOMContentLoaded", main);
