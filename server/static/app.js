// Live call monitor: replays a call segment by segment through
// POST /v1/calls/{id}/segments, carrying the signed state token and the
// segment sequence number between segments exactly as a telephony
// integration would. No libraries, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, samples: [], running: false, points: [], stopRequested: false, key: "" };
const params = new URLSearchParams(location.search);

// The API key, when the server has API keys: asked for on the page, kept
// in sessionStorage (this tab only, gone when it closes; never in the URL
// or localStorage) and sent as Authorization: Bearer on every API call.
const KEY_ITEM = "callwatch.apiKey";
function apiKey() {
  try { return sessionStorage.getItem(KEY_ITEM) || ""; } catch (e) { return ""; }
}
function setAPIKey(k) {
  try {
    if (k) sessionStorage.setItem(KEY_ITEM, k); else sessionStorage.removeItem(KEY_ITEM);
  } catch (e) { /* storage disabled: the key lasts until the page reloads */ }
  state.key = k;
  $("forget-key").hidden = !k;
}

// askKey shows the key form with why it is needed.
function askKey(msg) {
  $("auth").hidden = false;
  $("auth-msg").textContent = msg;
  $("api-key").focus();
}

async function api(method, path, body) {
  const headers = body ? { "Content-Type": "application/json" } : {};
  const key = state.key || apiKey();
  if (key) headers.Authorization = "Bearer " + key;
  const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = data.error || {};
    if (r.status === 401) askKey(key ? "the server refused this key: enter another" : "this server needs an API key");
    if (r.status === 403) askKey("this key lacks a scope the page needs (" + (e.message || "forbidden") + "): enter a key with the stream and classify scopes");
    const err = new Error(`${r.status} ${e.code || ""}: ${e.message || JSON.stringify(data)}`);
    err.status = r.status;
    throw err;
  }
  return data;
}

async function loadModel() {
  try {
    state.model = await api("GET", "/v1/model");
    $("model").textContent = `${state.model.name} ${state.model.version} · ${state.model.backend} · sha256 ${state.model.sha256.slice(0, 12)}`;
    $("auth").hidden = true;
  } catch (e) {
    if (e.status === 403) {
      // a stream-only key: calls play, the model's details need classify
      $("auth").hidden = true;
      $("model").textContent = "model details need a key with the classify scope; calls still play";
    } else {
      $("model").textContent = (e.status === 401 ? "API key needed: " : "model not ready: ") + e.message;
    }
  }
  drawChart();
}

async function init() {
  setAPIKey(apiKey());
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const k = $("api-key").value.trim();
    $("api-key").value = "";
    if (!k) return;
    setAPIKey(k);
    $("auth-msg").textContent = "";
    loadModel();
  });
  $("forget-key").addEventListener("click", () => { setAPIKey(""); state.model = null; loadModel(); });
  await loadModel();
  const s = await (await fetch("/static/samples.json")).json();
  state.samples = s.calls;
  for (const c of s.calls) {
    const o = document.createElement("option");
    o.value = c.id;
    o.textContent = `${c.id} (${c.kind})`;
    $("sample").appendChild(o);
  }
  if (params.get("sample")) $("sample").value = params.get("sample");
  if (params.get("delay") !== null) {
    const o = document.createElement("option");
    o.value = params.get("delay"); o.textContent = params.get("delay") + " ms"; o.selected = true;
    $("delay").appendChild(o);
  }
  $("play").addEventListener("click", play);
  $("stop").addEventListener("click", () => { state.stopRequested = true; });
  drawChart();
}

// segmentsToPlay: the pasted transcript (a line per segment, or 8-word
// cuts of one long line) or the chosen sample.
function segmentsToPlay() {
  const text = $("paste").value.trim();
  if (text) {
    let lines = text.split(/\n+/).map((l) => l.trim()).filter(Boolean);
    if (lines.length === 1) {
      const w = lines[0].split(/\s+/);
      lines = [];
      for (let i = 0; i < w.length; i += 8) lines.push(w.slice(i, i + 8).join(" "));
    }
    let t = 0;
    return { id: "pasted", segments: lines.map((l) => { const d = 0.35 * l.split(/\s+/).length; const s = { text: l, start: t, end: t + d }; t += d + 0.3; return s; }) };
  }
  return state.samples.find((c) => c.id === $("sample").value);
}

function setStatus(s, label) { $("status").dataset.state = s; $("status").textContent = label || s; }

async function play() {
  if (state.running) return;
  const call = segmentsToPlay();
  if (!call) return;
  state.running = true; state.stopRequested = false; state.points = [];
  $("play").disabled = true; $("stop").disabled = false;
  $("transcript").innerHTML = ""; $("alerts").innerHTML = "";
  setLevel("none"); $("score").textContent = "–"; $("segno").textContent = "–";
  drawChart();
  const callID = `${call.id}-${Date.now().toString(36)}`;
  const delay = Number($("delay").value) || 0;
  let token = "";
  setStatus("running", `playing ${call.id}…`);
  try {
    for (let i = 0; i < call.segments.length && !state.stopRequested; i++) {
      const sg = call.segments[i];
      addSegment(i, sg);
      const r = await api("POST", `/v1/calls/${encodeURIComponent(callID)}/segments`, { text: sg.text, start: sg.start, end: sg.end, state: token, seq: i });
      token = r.state;
      state.points.push({ t: sg.end, score: r.score, level: r.level, alert: r.alert });
      $("score").textContent = r.score.toFixed(3);
      $("segno").textContent = `${r.segment + 1} / ${call.segments.length}`;
      $(`seg-${i}`).querySelector(".s").textContent = r.score.toFixed(3);
      setLevel(r.level);
      if (r.alert) showAlert(r, sg);
      drawChart();
      if (delay) await new Promise((res) => setTimeout(res, delay));
    }
    setStatus("done", state.stopRequested ? "stopped" : `done · token ${token.length} bytes`);
  } catch (e) {
    setStatus("error", "error: " + e.message);
  } finally {
    state.running = false; $("play").disabled = false; $("stop").disabled = true;
  }
}

function setLevel(l) { $("level").dataset.level = l; $("level").textContent = l; }

function addSegment(i, sg) {
  const p = document.createElement("p");
  p.id = `seg-${i}`;
  const t = document.createElement("span"); t.className = "t"; t.textContent = `${sg.start.toFixed(1)}s`;
  const s = document.createElement("span"); s.className = "s";
  const x = document.createElement("span"); x.className = "x"; x.textContent = sg.text;
  p.append(t, x, s);
  $("transcript").appendChild(p);
  p.scrollIntoView({ block: "nearest" });
}

// showAlert lists the alert and highlights each reason's phrase in its segment.
function showAlert(r, sg) {
  const div = document.createElement("div");
  div.className = "alert " + r.alert;
  const reasons = (r.reasons || []).map((x) => `“${x.phrase || x.text}” (segment ${x.segment + 1}, +${x.delta.toFixed(3)})`).join("; ");
  div.textContent = `${r.alert.toUpperCase()} at ${sg.end.toFixed(1)}s — ${reasons}`;
  $("alerts").appendChild(div);
  for (const x of r.reasons || []) {
    const p = $(`seg-${x.segment}`);
    if (!p) continue;
    p.classList.add("reason");
    const span = p.querySelector(".x");
    const text = span.textContent;
    const at = x.phrase ? text.indexOf(x.phrase) : -1;
    if (at < 0 || span.querySelector("mark")) continue;
    span.textContent = "";
    const m = document.createElement("mark"); m.textContent = x.phrase;
    span.append(text.slice(0, at), m, text.slice(at + x.phrase.length));
  }
}

const NS = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// drawChart: score over call time, with the model's threshold lines.
function drawChart() {
  const svg = $("chart");
  svg.innerHTML = "";
  const W = 800, H = 260, L = 40, R = 10, T = 10, B = 28;
  const pts = state.points;
  const tmax = Math.max(10, ...pts.map((p) => p.t));
  const x = (t) => L + (t / tmax) * (W - L - R);
  const y = (s) => T + (1 - s) * (H - T - B);
  svg.appendChild(el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fcfcfc", stroke: "#ddd" }));
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    svg.appendChild(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#777" }, v.toFixed(2)));
  }
  for (let t = 0; t <= tmax; t += tmax > 60 ? 10 : 5) {
    svg.appendChild(el("text", { x: x(t), y: H - 8, "text-anchor": "middle", "font-size": 11, fill: "#777" }, `${t}s`));
  }
  if (state.model) {
    const th = state.model.thresholds;
    for (const [v, c, n] of [[th.suspicious, "#ef6c00", "suspicious"], [th.dangerous, "#c62828", "dangerous"]]) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: c, "stroke-dasharray": "5 4" }));
      svg.appendChild(el("text", { x: W - R - 4, y: y(v) - 4, "text-anchor": "end", "font-size": 11, fill: c }, n));
    }
  }
  if (!pts.length) return;
  svg.appendChild(el("polyline", { points: pts.map((p) => `${x(p.t)},${y(p.score)}`).join(" "), fill: "none", stroke: "#1565c0", "stroke-width": 2.5, id: "score-line" }));
  const color = { none: "#2e7d32", suspicious: "#ef6c00", dangerous: "#c62828" };
  for (const p of pts) {
    svg.appendChild(el("circle", { cx: x(p.t), cy: y(p.score), r: p.alert ? 6 : 3.5, fill: color[p.level] || "#555", class: "pt" }));
  }
}

init();
