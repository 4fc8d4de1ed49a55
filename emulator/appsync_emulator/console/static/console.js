// The emulator console: one WebSocket feed (/console/events) and JSON calls to /console/api/*.
// Every text from the server is put in the page with textContent, never parsed as HTML.
"use strict";

const LOG_ROWS = 500;
const WATCH_ROWS = 200;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function clock(seconds) {
  if (typeof seconds !== "number") return "";
  const d = new Date(seconds * 1000);
  return d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

let feed = null;
let faultKinds = {};

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  feed = new WebSocket(`${scheme}://${location.host}/console/events`);
  const status = $("status");
  feed.addEventListener("close", () => { status.textContent = "closed"; status.className = "status closed"; });
  feed.addEventListener("message", (event) => {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    switch (msg.type) {
      case "hello": onHello(msg); status.textContent = "ready"; status.className = "status ready"; break;
      case "state": onState(msg); break;
      case "log": onLog(msg.entries || []); break;
      case "data": onData(msg); break;
      case "watching": onWatching(msg); break;
      case "error": $("watch-status").textContent = msg.message; $("watch-status").className = "result bad"; break;
    }
  });
}

function onHello(msg) {
  const select = $("pub-auth");
  select.replaceChildren(...(msg.auth_modes || []).map((m) => { const o = el("option", m); o.value = m; return o; }));
  $("pub-max").textContent = msg.max_events;
  faultKinds = msg.fault_kinds || {};
  const kinds = $("fault-kind");
  kinds.replaceChildren(...Object.entries(faultKinds).map(([k, label]) => { const o = el("option", label); o.value = k; return o; }));
  showParams();
}

function onState(msg) {
  $("counts").textContent = `${msg.open_count} open connection(s), ${msg.subscription_count} subscription(s), ${msg.faults.length} fault(s)`;
  const body = $("connections").tBodies[0];
  const rows = msg.connections.map((c) => {
    const tr = el("tr", undefined, c.open ? "open" : "closed");
    tr.dataset.id = c.id;
    tr.append(el("td", c.id), el("td", c.auth_mode || "-"), el("td", c.identity || "-"),
      el("td", clock(c.opened_at) + (c.open ? "" : ` (closed ${c.close_code ?? ""})`)),
      el("td", c.subscriptions.map((s) => `${s.id}: ${s.pattern}`).join("\n") || "-"));
    return tr;
  });
  body.replaceChildren(...rows);
  $("no-connections").hidden = rows.length > 0;

  const channels = msg.channels.map((ch) => {
    const li = el("li");
    li.dataset.pattern = ch.pattern;
    li.append(el("code", ch.pattern), document.createTextNode(" ← " + ch.subscriptions.map((s) => `${s.connection}/${s.id}`).join(", ")));
    return li;
  });
  $("channels").replaceChildren(...channels);
  $("no-channels").hidden = channels.length > 0;

  const target = $("fault-target");
  const chosen = target.value;
  const options = [el("option", "all connections")];
  options[0].value = "all";
  for (const c of msg.connections) {
    if (!c.open) continue;
    const o = el("option", `${c.id} (${c.identity || c.auth_mode || "?"})`);
    o.value = c.id;
    options.push(o);
  }
  target.replaceChildren(...options);
  target.value = options.some((o) => o.value === chosen) ? chosen : "all";

  const faults = msg.faults.map((f) => {
    const li = el("li", `#${f.key} ${f.fault} → ${f.target}`);
    li.dataset.key = f.key;
    const remove = el("button", "remove");
    remove.type = "button";
    remove.addEventListener("click", () => faultCall({ action: "remove", key: f.key }));
    li.append(remove);
    return li;
  });
  $("faults").replaceChildren(...faults);
  $("no-faults").hidden = faults.length > 0;
}

function logRow(e) {
  const tr = el("tr", undefined, e.kind === "error" ? "error" : "publish");
  if (e.kind === "publish") {
    const result = e.failed.length ? `${e.accepted} accepted, ${e.failed.length} failed: ` + e.failed.map((f) => `#${f.index} ${f.code}`).join(", ")
      : `${e.accepted} accepted → ${e.deliveries} delivered`;
    tr.append(el("td", clock(e.time)), el("td", e.channel), el("td", e.events.join("\n")),
      el("td", e.publisher + (e.principal ? ` (${e.principal})` : "")), el("td", e.transport), el("td", result));
    if (e.failed.length) tr.className = "publish error";
  } else {
    const where = e.transport === "http" ? `HTTP ${e.status}` : e.frame_type;
    tr.append(el("td", clock(e.time)), el("td", "-"), el("td", e.errors.map((x) => `${x.errorType}: ${x.message}`).join("\n")),
      el("td", e.connection || "http"), el("td", e.transport), el("td", where + (e.id ? ` id=${e.id}` : "")));
  }
  tr.dataset.search = tr.textContent.toLowerCase();
  return tr;
}

function applyFilter(tr) {
  const text = $("log-filter").value.trim().toLowerCase();
  const errorsOnly = $("log-errors-only").checked;
  tr.hidden = (text && !tr.dataset.search.includes(text)) || (errorsOnly && !tr.classList.contains("error"));
}

function onLog(entries) {
  const body = $("log").tBodies[0];
  for (const e of entries) {
    const tr = logRow(e);
    applyFilter(tr);
    body.prepend(tr);
  }
  while (body.rows.length > LOG_ROWS) body.lastElementChild.remove();
}

function onWatching(msg) {
  const status = $("watch-status");
  status.className = "result";
  status.textContent = msg.pattern ? `subscribed to ${msg.pattern}` : "not subscribed";
  $("watch-list").replaceChildren();
}

function onData(msg) {
  const list = $("watch-list");
  for (const text of msg.events) {
    const li = el("li", `${clock(msg.time)} ${msg.channel} ${text}`);
    li.dataset.channel = msg.channel;
    list.prepend(li);
  }
  while (list.children.length > WATCH_ROWS) list.lastElementChild.remove();
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: `HTTP ${response.status}` }; }
  return { ok: response.ok, data };
}

async function publish(event) {
  event.preventDefault();
  const result = $("pub-result");
  const lines = $("pub-events").value.split("\n").map((l) => l.trim()).filter((l) => l);
  const body = { channel: $("pub-channel").value.trim(), events: lines, auth_mode: $("pub-auth").value };
  const token = $("pub-token").value.trim();
  if (token) body.token = token;
  const { ok, data } = await post("/console/api/publish", body);
  if (!ok) { result.className = "result bad"; result.textContent = data.error; return; }
  result.className = data.status === 200 && !(data.answer.failed || []).length ? "result result-ok" : "result bad";
  result.textContent = `${data.status} ${JSON.stringify(data.answer)}`;
}

async function faultCall(body) {
  const result = $("fault-result");
  const { ok, data } = await post("/console/api/faults", body);
  result.className = ok ? "result result-ok" : "result bad";
  result.textContent = ok ? data.message : data.error;
}

function injectFault(event) {
  event.preventDefault();
  const kind = $("fault-kind").value;
  const body = { action: "add", kind, target: $("fault-target").value };
  if (kind === "delay_acks") body.seconds = Number($("fault-seconds").value);
  if (kind === "close") { body.code = Number($("fault-code").value); body.reason = $("fault-reason").value; }
  faultCall(body);
}

function showParams() {
  const kind = $("fault-kind").value;
  for (const node of document.querySelectorAll(".param")) node.classList.toggle("shown", node.classList.contains(`param-${kind}`));
}

function watch(pattern) {
  if (feed && feed.readyState === WebSocket.OPEN) feed.send(JSON.stringify({ type: "watch", pattern }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("publish-form").addEventListener("submit", publish);
  $("fault-form").addEventListener("submit", injectFault);
  $("fault-kind").addEventListener("change", showParams);
  $("fault-clear").addEventListener("click", () => faultCall({ action: "clear" }));
  $("watch-form").addEventListener("submit", (event) => { event.preventDefault(); watch($("watch-pattern").value.trim()); });
  $("watch-stop").addEventListener("click", () => watch(null));
  const refilter = () => { for (const tr of $("log").tBodies[0].rows) applyFilter(tr); };
  $("log-filter").addEventListener("input", refilter);
  $("log-errors-only").addEventListener("change", refilter);
  connect();
});
