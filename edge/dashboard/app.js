// bookd live dashboard: plain JS, no dependencies. It speaks the protocol
// of GET /v1/ws (README.md, "Live availability").
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  listing: null,     // the listing shown
  resources: {},     // id -> {name, capacity, epoch, seq, slots: Map(start -> counts)}
  order: [],         // resource ids in display order
  ws: null,
  retry: 0,
};

function setStatus(s, text) {
  $("status").dataset.state = s;
  $("status-text").textContent = text || s;
}

// ---- WebSocket ------------------------------------------------------------

function topic() { return state.listing ? "listing:" + state.listing : null; }

// since is the last position per resource: a reconnect resumes from it.
function since() {
  const out = {};
  for (const id of Object.keys(state.resources)) {
    const r = state.resources[id];
    if (r.epoch !== undefined) out[id] = { epoch: r.epoch, seq: r.seq };
  }
  return out;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/v1/ws");
  state.ws = ws;
  setStatus("connecting");
  ws.onopen = () => {
    state.retry = 0;
    setStatus("live");
    subscribe();
  };
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    onMessage(m);
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    setStatus("closed", "reconnecting (" + ev.code + ")");
    // Jittered backoff, so that a draining node's clients spread out.
    const wait = Math.min(10000, 250 * 2 ** state.retry++) * (0.5 + Math.random());
    setTimeout(connect, wait);
  };
}

function subscribe() {
  const t = topic();
  if (!t || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  const msg = { type: "subscribe", topic: t };
  const s = since();
  if (Object.keys(s).length) msg.since = s;
  state.ws.send(JSON.stringify(msg));
}

function onMessage(m) {
  if (m.topic && m.topic !== topic()) return;
  switch (m.type) {
    case "snapshot":
      for (const r of m.resources) {
        const res = ensure(r.resource_id);
        res.capacity = r.capacity; res.epoch = r.epoch; res.seq = r.seq;
        res.slots = new Map(r.slots.map((s) => [s.start, s]));
      }
      render();
      break;
    case "resumed":
      break;
    case "delta": {
      const res = state.resources[m.resource_id];
      if (!res || res.epoch !== m.epoch || res.seq !== m.prev_seq) {
        subscribe(); // a gap: the server answers with a fresh snapshot
        return;
      }
      res.seq = m.seq;
      for (const s of m.slots || []) {
        if (res.slots.has(s.start)) {
          res.slots.set(s.start, s);
          paint(m.resource_id, s.start, true);
        }
      }
      stamp();
      break;
    }
    case "error":
      $("grid-wrap").insertAdjacentHTML("afterbegin", '<p class="muted">' + esc(m.code + ": " + m.detail) + "</p>");
      break;
  }
}

function ensure(id) {
  if (!state.resources[id]) {
    state.resources[id] = { name: id, slots: new Map() };
    state.order.push(id);
  }
  return state.resources[id];
}

// ---- rendering ------------------------------------------------------------

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function label(start) {
  if (!start) return "slot";
  const t = start.indexOf("T");
  if (t < 0) {
    const d = new Date(start + "T00:00:00Z");
    return d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  }
  return start.slice(5, 10) + " " + start.slice(t + 1, t + 6);
}

function render() {
  const starts = new Set();
  for (const id of state.order) for (const s of state.resources[id].slots.keys()) starts.add(s);
  const cols = [...starts].sort();
  if (!state.order.length) {
    $("grid-wrap").innerHTML = '<p class="muted">This listing has no resources.</p>';
    return;
  }
  let html = '<table class="grid"><thead><tr><th class="res">Resource</th>';
  for (const c of cols) html += "<th>" + esc(label(c)) + "</th>";
  html += "</tr></thead><tbody>";
  for (const id of state.order) {
    const r = state.resources[id];
    html += '<tr><th class="res">' + esc(r.name) + "<small>" + esc(id) + " · " + (r.capacity ?? "?") + " units</small></th>";
    for (const c of cols) html += '<td class="cell" data-resource="' + esc(id) + '" data-slot="' + esc(c) + '"></td>';
    html += "</tr>";
  }
  html += "</tbody></table>";
  $("grid-wrap").innerHTML = html;
  for (const id of state.order) for (const c of cols) paint(id, c, false);
  stamp();
}

function paint(id, start, flash) {
  const cell = document.querySelector('.cell[data-resource="' + CSS.escape(id) + '"][data-slot="' + CSS.escape(start) + '"]');
  const r = state.resources[id];
  const s = r && r.slots.get(start);
  if (!cell || !s) return;
  const cap = Math.max(r.capacity || 1, 1);
  cell.dataset.free = s.free; cell.dataset.held = s.held; cell.dataset.confirmed = s.confirmed;
  cell.title = id + " " + start + ": " + s.free + " free, " + s.held + " held, " + s.confirmed + " confirmed";
  cell.classList.toggle("full", s.free === 0);
  // Built with the DOM, not markup: the page's CSP forbids inline styles.
  const pct = (n) => (100 * n / cap).toFixed(1) + "%";
  const box = document.createElement("div"); box.className = "box";
  const fill = document.createElement("div"); fill.className = "fill";
  for (const [cls, n] of [["c", s.confirmed], ["h", s.held], ["f", s.free]]) {
    const i = document.createElement("i"); i.className = cls; i.style.height = pct(n); fill.appendChild(i);
  }
  const num = document.createElement("span"); num.textContent = s.free;
  box.append(fill, num);
  cell.replaceChildren(box);
  if (flash) { cell.classList.remove("flash"); void cell.offsetWidth; cell.classList.add("flash"); }
}

function stamp() { $("updated").textContent = "Updated " + new Date().toLocaleTimeString(); }

// ---- listings -------------------------------------------------------------

async function loadListings() {
  const sel = $("listing");
  const items = [];
  let cursor = null;
  do {
    const resp = await fetch("/v1/listings?limit=100" + (cursor ? "&after=" + encodeURIComponent(cursor) : ""));
    if (!resp.ok) break;
    const page = await resp.json();
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 1000);
  sel.innerHTML = '<option value="">— pick a listing —</option>' +
    items.map((l) => '<option value="' + esc(l.id) + '">' + esc(l.name + " · " + l.city + " (" + l.kind + ")") + "</option>").join("");
  const want = new URLSearchParams(location.search).get("listing");
  if (want) { sel.value = want; await pick(want); }
}

async function pick(id) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN && state.listing) {
    state.ws.send(JSON.stringify({ type: "unsubscribe", topic: topic() }));
  }
  state.listing = id || null;
  state.resources = {}; state.order = [];
  if (!id) { $("grid-wrap").innerHTML = '<p class="muted">Pick a listing.</p>'; return; }
  const resp = await fetch("/v1/listings/" + encodeURIComponent(id));
  if (resp.ok) {
    const l = await resp.json();
    $("listing-info").textContent = l.kind + " · " + l.city + " · " + l.time_zone;
    for (const r of l.resources || []) ensure(r.id).name = r.name;
  }
  const u = new URL(location.href); u.searchParams.set("listing", id); history.replaceState(null, "", u);
  $("grid-wrap").innerHTML = '<p class="muted">Loading…</p>';
  subscribe();
}

// ---- cluster --------------------------------------------------------------

// GET /v1/cluster is for admins: the page asks for an admin's access token
// and keeps it for this tab only (sessionStorage).
async function loadCluster() {
  const token = sessionStorage.getItem("bookd-admin-token");
  const resp = await fetch("/v1/cluster", token ? { headers: { Authorization: "Bearer " + token } } : {});
  const denied = resp.status === 401 || resp.status === 403;
  $("admin-form").hidden = !denied;
  if (denied) {
    $("nodes").innerHTML = "";
    $("cluster-note").textContent = resp.status === 403 ? "This token is not an admin's." : "Sign in as an admin to see the cluster.";
    return;
  }
  $("cluster-note").textContent = "";
  if (resp.ok) renderCluster(await resp.json());
}

async function pollCluster() {
  if (!$("panel-cluster").hidden) {
    try { await loadCluster(); } catch { /* next round */ }
  }
  setTimeout(pollCluster, 2000);
}

$("admin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("bookd-admin-token", $("admin-token").value.trim());
  $("admin-token").value = "";
  loadCluster().catch(() => {});
});

function renderCluster(st) {
  const most = Math.max(1, ...st.members.map((m) => m.active));
  $("nodes").innerHTML = st.members.map((m) =>
    '<div class="node' + (m.self ? " self" : "") + '"><h3>' + esc(m.id) + (m.self ? " (this node)" : "") + "</h3>" +
    '<span class="state ' + esc(m.state) + '">' + esc(m.state) + "</span>" +
    "<dl><dt>active</dt><dd>" + m.active + " resources</dd><dt>actors</dt><dd>" + esc(m.actor_address || "") +
    "</dd><dt>placement</dt><dd>" + (m.placement ? "yes" : "no") + "</dd></dl>" +
    '<div class="meter"><i data-w="' + (100 * m.active / most).toFixed(0) + '"></i></div></div>').join("") ||
    '<p class="muted">No members.</p>';
  for (const i of document.querySelectorAll(".meter i")) i.style.width = i.dataset.w + "%";
}

// ---- wiring ---------------------------------------------------------------

for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll(".tab")) {
      o.classList.toggle("active", o === b);
      o.setAttribute("aria-selected", o === b);
      $("panel-" + o.dataset.panel).hidden = o !== b;
    }
    if (b.dataset.panel === "cluster") loadCluster().catch(() => {});
  });
}
$("listing").addEventListener("change", (e) => pick(e.target.value));
connect();
loadListings();
pollCluster();
