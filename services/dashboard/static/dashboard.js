// Switchboard dashboard: one EventSource, one snapshot a second, no framework, no CDN.
"use strict";
const STATUSES = ["queued", "wired", "sent", "delivered", "errored", "failed"];
const CHART = ["wired", "delivered", "failed", "errored"];
const $ = (s) => document.querySelector(s);
let source = null;
let tailRows = [];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c === null || c === undefined ? "" : c);
  return node;
}
const short = (uuid) => (uuid || "").slice(0, 8);
const time = (epoch) => new Date(epoch * 1000).toLocaleTimeString();
const pct = (r) => (r === null ? "–" : (r * 100).toFixed(1) + " %");
const ms = (v) => (v === null ? "–" : v < 1000 ? v.toFixed(0) + " ms" : (v / 1000).toFixed(1) + " s");

function chart(series) {
  const w = 180, h = 36, svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const max = Math.max(1, ...CHART.flatMap((s) => series[s]));
  for (const s of CHART) {
    const line = document.createElementNS(svgNS, "polyline");
    line.setAttribute("class", s);
    line.setAttribute("points", series[s].map((v, i) => `${(i * w / 59).toFixed(1)},${(h - 1 - v * (h - 2) / max).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function fill(selector, rows) {
  const body = $(selector + " tbody");
  body.replaceChildren(...rows);
}

function renderChannels(channels) {
  fill("#channels", channels.map((c) => {
    const row = el("tr", { "data-channel": c.uuid }, el("td", { class: "mono", title: c.uuid }, short(c.uuid)));
    for (const s of STATUSES) {
      row.append(el("td", { class: "n", "data-status": s },
        el("span", { class: "last5" }, String(c.last5[s])), " / ", el("span", { class: "last60" }, String(c.last60[s]))));
    }
    const err = c.last_error;
    row.append(el("td", { class: "n ratio" }, pct(c.ratio)),
      el("td", { class: "n latency" }, c.latency.avg_ms === null ? "–" : `${ms(c.latency.avg_ms)} (p95 ${ms(c.latency.p95_ms)})`),
      el("td", { class: "last-error", title: err ? err.message : "" }, err ? el("span", { class: "err-code failed" }, err.code) : "–",
        err ? " " + time(err.at) : ""),
      el("td", {}, chart(c.series)));
    return row;
  }));
  const select = $("#f-channel");
  const known = new Set([...select.options].map((o) => o.value));
  for (const c of channels) if (!known.has(c.uuid)) select.append(el("option", { value: c.uuid }, c.uuid));
}

function renderWorkers(workers) {
  fill("#workers", workers.map((w) => el("tr", { "data-instance": w.instance, "data-service": w.service },
    el("td", {}, w.service), el("td", { class: "mono" }, w.instance),
    el("td", { class: "worker-state " + (w.alive ? "alive" : "stale") }, w.alive ? "alive" : `stale (${w.age_s} s)`),
    el("td", { class: "n" }, String(w.in_flight ?? "–")),
    el("td", { class: "n" }, String(Object.values(w.counters).reduce((a, b) => a + b, 0))),
    el("td", { class: "mono" }, w.queues.join(", ")))));
}

function renderBinds(binds) {
  fill("#binds", binds.map((b) => {
    const state = b.alive ? b.state : "unknown (worker stale)";
    return el("tr", { "data-connection": b.connection },
      el("td", {}, `${b.connection} (${b.protocol})`),
      el("td", { class: "bind-state " + (b.alive ? b.state : "stale") }, state),
      el("td", { class: "n" }, `${b.window ?? 0}/${b.window_max ?? "–"}`),
      el("td", { class: "n" }, `${b.tps ?? 0}${b.tps_limit ? " / " + b.tps_limit : ""}`),
      el("td", { class: "mono" }, b.last_error || "–"));
  }));
}

function renderQueues(queues, dead) {
  fill("#queues", queues.map((q) => el("tr", { "data-queue": q.name },
    el("td", { class: "mono" }, q.name),
    el("td", { class: "n messages" }, q.exists ? String(q.messages) : "missing"),
    el("td", { class: "n" }, q.exists ? String(q.consumers) : "–"))));
  const letters = queues.find((q) => q.name.endsWith("dead.letters"));
  $("#dead-count").textContent = letters && letters.exists ? `${letters.messages} in dead.letters` : "–";
  fill("#dead", dead.reasons.map((r) => el("tr", {}, el("td", { class: "mono" }, r.reason), el("td", { class: "n" }, String(r.count)))));
}

function renderTail(rows) {
  tailRows = rows.concat(tailRows).slice(0, 200);
  fill("#tail", tailRows.map((r) => el("tr", { "data-status": r.status, "data-channel": r.channel },
    el("td", {}, time(r.at)), el("td", { class: "mono", title: r.channel }, short(r.channel)),
    el("td", { class: r.status }, r.status), el("td", { class: "mono" }, String(r.id ?? "")), el("td", { class: "mono" }, r.code || ""))));
}

let lastCount = null, lastAt = null;
function render(snap) {
  $("#live").textContent = "live";
  if (lastCount !== null && snap.now > lastAt) $("#rate").textContent = `${((snap.statuses - lastCount) / (snap.now - lastAt)).toFixed(1)} statuses/s`;
  lastCount = snap.statuses; lastAt = snap.now;
  renderChannels(snap.channels);
  renderWorkers(snap.workers);
  renderBinds(snap.binds);
  renderQueues(snap.queues, snap.dead);
  renderTail(snap.tail.slice().reverse());
}

function connect() {
  if (source) source.close();
  tailRows = [];
  const params = new URLSearchParams();
  if ($("#f-channel").value) params.set("channel", $("#f-channel").value);
  if ($("#f-status").value) params.set("status", $("#f-status").value);
  source = new EventSource("events?" + params);
  source.onmessage = (event) => render(JSON.parse(event.data));
  source.onerror = () => { $("#live").textContent = "reconnecting…"; };
}

document.addEventListener("DOMContentLoaded", () => {
  $("#f-channel").addEventListener("change", connect);
  $("#f-status").addEventListener("change", connect);
  connect();
});
