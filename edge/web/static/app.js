/* vitals-edge bedside view: read-only. Data: /api/live (server-sent events), /api/episodes,
   /api/episodes/ID/evidence. No inline code (strict CSP); text is set with textContent only. */
"use strict";

const BEAT_COLOURS = { N: "#3fe07f", V: "#ff5c5c", S: "#58a6ff", F: "#c39bd3", Q: "#aaaaaa" };
const KIND_COLOURS = { ecg: "#3fe07f", ppg: "#58c4f5", resp: "#f0c674" };
const NUMERICS = [
  ["heart_rate", "HR", "hr", "/min"], ["pulse_rate", "Pulse", "hr", "/min"],
  ["spo2", "SpO2", "spo2", "%"], ["resp_rate", "Resp", "resp", "/min"],
  ["temperature", "Temp", "temp", "°C"],
];

const view = {
  strips: {},          // stream id -> {fs, kind, i0, y: [], beats: [], plot, el, dirty}
  stripS: 10, staleS: 3,
  lastMessage: 0, status: null, statusAt: 0,
  episodesVersion: null, selected: null, source: null,
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmtAge(s) {
  if (s === null || s === undefined) return "never";
  if (s < 1) return "< 1 s";
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

function fmtTime(epoch) {
  if (!epoch) return "—";
  return new Date(epoch * 1000).toLocaleString();
}

/* ---- live strips ------------------------------------------------------------------ */

function stripFor(s) {
  let st = view.strips[s.id];
  if (st) return st;
  const box = el("div", "strip");
  box.dataset.stream = s.id;
  box.dataset.kind = s.kind;
  const title = el("div", "title");
  title.append(el("b", null, s.kind.toUpperCase()), " " + s.id + " · " + s.fs + " Hz · " +
               (s.unit || "") + " · last " + view.stripS + " s");
  const plotBox = el("div", "plot");
  box.append(title, plotBox);
  document.getElementById("strips").append(box);
  st = { id: s.id, fs: s.fs, kind: s.kind, i0: 0, y: [], beats: [], box, plotBox, plot: null,
         dirty: true };
  st.plot = new uPlot(plotOptions(st), [[], []], plotBox);
  view.strips[s.id] = st;
  return st;
}

function plotOptions(st) {
  const width = Math.max(300, st.plotBox.clientWidth || document.body.clientWidth - 60);
  return {
    width, height: st.kind === "ecg" ? 190 : 120,
    legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, range: [-view.stripS, 0] }, y: { range: headroom } },
    axes: [
      { stroke: "#8b949e", grid: { stroke: "#2b3440", width: 1 }, ticks: { stroke: "#2b3440" },
        values: (u, vals) => vals.map(v => v + " s") },
      { stroke: "#8b949e", grid: { stroke: "#2b3440", width: 1 }, ticks: { stroke: "#2b3440" },
        size: 50 },
    ],
    series: [{}, { stroke: KIND_COLOURS[st.kind] || "#ddd", width: 1.4, spanGaps: false,
                   points: { show: false } }],
    hooks: { draw: [u => drawBeats(u, st)] },
  };
}

/* room above the signal for the beat labels */
function headroom(u, min, max) {
  if (min === null || max === null) return [-1, 1];
  const span = Math.max(max - min, 0.5);
  return [min - 0.05 * span, max + 0.3 * span];
}

function drawBeats(u, st) {
  if (!st.beats.length) return;
  const ctx = u.ctx, end = st.i0 + st.y.length, top = u.bbox.top;
  ctx.save();
  ctx.font = "bold " + Math.round(12 * devicePixelRatio) + "px system-ui, sans-serif";
  ctx.textAlign = "center";
  let drawn = 0;
  for (const [index, label] of st.beats) {
    const t = (index - end) / st.fs;
    if (t < -view.stripS || t > 0) continue;
    const x = u.valToPos(t, "x", true);
    const colour = BEAT_COLOURS[label] || "#aaa";
    ctx.fillStyle = colour;
    ctx.fillText(label, x, top + 14 * devicePixelRatio);
    const v = st.y[index - st.i0];
    if (v !== null && v !== undefined) {
      const y = u.valToPos(v, "y", true);
      ctx.beginPath();
      ctx.arc(x, y, 3 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.fill();
    }
    drawn += 1;
  }
  ctx.restore();
  st.box.dataset.beats = String(drawn);
}

function appendSamples(st, i0, y) {
  let end = st.i0 + st.y.length;
  const keep = Math.round(view.stripS * st.fs);
  if (st.y.length === 0 || i0 < end || i0 - end > keep) {
    if (i0 !== end || st.y.length === 0) { st.y = []; st.i0 = i0; end = i0; }
  }
  while (end < i0) { st.y.push(null); end += 1; }       // a gap: shown as a break
  for (const v of y) st.y.push(v);
  const extra = st.y.length - keep;
  if (extra > 0) { st.y.splice(0, extra); st.i0 += extra; }
  const oldest = st.i0;
  while (st.beats.length && st.beats[0][0] < oldest) st.beats.shift();
  st.dirty = true;
}

function render() {
  for (const st of Object.values(view.strips)) {
    if (!st.dirty) continue;
    st.dirty = false;
    const n = st.y.length, end = st.i0 + n;
    const xs = new Array(n);
    for (let i = 0; i < n; i++) xs[i] = (st.i0 + i - end) / st.fs;
    st.plot.setData([xs, st.y]);
    st.box.dataset.end = String(end);
  }
}

/* ---- messages ----------------------------------------------------------------------- */

function onMessage(msg) {
  view.lastMessage = Date.now();
  if (msg.type === "snapshot") {
    view.stripS = msg.strip_s; view.staleS = msg.stale_s;
    for (const id of Object.keys(view.strips)) { view.strips[id].box.remove(); }
    view.strips = {};
    for (const s of msg.streams) {
      const st = stripFor(s);
      st.y = []; st.i0 = s.i0;
      appendSamples(st, s.i0, s.y);
      st.beats = s.beats.slice();
    }
  } else if (msg.type === "tick") {
    for (const [id, upd] of Object.entries(msg.streams)) {
      const st = view.strips[id];
      if (!st) { reconnect(); return; }               // a new stream: take a fresh snapshot
      for (const p of upd.parts) appendSamples(st, p.i0, p.y);
      for (const b of upd.beats) st.beats.push(b);
    }
  }
  if (msg.status) { view.status = msg.status; view.statusAt = Date.now(); renderStatus(); }
  if (msg.episodes !== view.episodesVersion) {
    view.episodesVersion = msg.episodes;
    loadEpisodes();
  }
  requestAnimationFrame(render);
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/api/live");
  view.source = es;
  es.onopen = () => { conn.textContent = "live"; conn.className = "conn ok"; };
  es.onmessage = e => onMessage(JSON.parse(e.data));
  es.onerror = () => {
    conn.textContent = "reconnecting…"; conn.className = "conn bad";
    if (es.readyState === EventSource.CLOSED) setTimeout(reconnect, 2000);
  };
}

function reconnect() {
  if (view.source) view.source.close();
  connect();
}

/* ---- status: sources, numerics, NEWS2, outbox ------------------------------------- */

function numTile(cls, label, value, unit, old) {
  const t = el("div", "num " + cls + (old ? " old" : ""));
  t.append(el("div", "label", label));
  const v = el("div", "value", value);
  if (unit) v.append(el("span", "unit", unit));
  t.append(v);
  return t;
}

function renderStatus() {
  const s = view.status;
  if (!s || !s.sources) return;
  const box = document.getElementById("sources");
  box.replaceChildren();
  for (const src of s.sources) {
    const card = el("div", "card" + (src.silent ? " silent" : ""));
    card.dataset.device = src.device;
    const head = el("div", "id", (src.patient ? "patient " + src.patient + " · " : "") +
                    "device " + src.device);
    const quality = src.streams.map(x => x.quality).filter(q => q !== null);
    const meta = el("div", "meta");
    const parts = [["transport", src.transport], ["link", src.link],
                   ["battery", src.battery_percent === null ? "—" : src.battery_percent + " %"],
                   ["signal quality", quality.length ? quality[0].toFixed(2) : "—"],
                   ["last sample", fmtAge(src.last_sample_age_s) + " ago"],
                   ["gaps", src.gaps]];
    parts.forEach(([k, v], i) => {
      meta.append((i ? " · " : "") + k + " ");
      meta.append(el("b", null, v));
    });
    const nums = el("div", "numerics");
    const n = src.numerics || {};
    for (const [key, label, cls, unit] of NUMERICS) {
      if (!n[key]) continue;
      if (key === "pulse_rate" && n.heart_rate) continue;
      const v = n[key];
      const digits = key === "temperature" ? 1 : 0;
      nums.append(numTile(cls, label, v.value.toFixed(digits), unit, v.age_s > 60));
    }
    if (n.systolic_bp) {
      const d = n.diastolic_bp ? Math.round(n.diastolic_bp.value) : "—";
      nums.append(numTile("bp", "BP", Math.round(n.systolic_bp.value) + "/" + d, "mmHg",
                          n.systolic_bp.age_s > 3600));
    }
    const news = src.news2;
    let band = "none", score = "—", label = "NEWS2";
    if (news) {
      if (news.complete) {
        score = String(news.total);
        band = news.total === 0 ? "zero" : news.band;
        label = "NEWS2 · " + news.band;
      } else {
        score = "(" + news.partial_total + ")";
        label = "NEWS2 partial · " + news.missing.length + " missing";
      }
    }
    const tile = numTile("news2 band-" + band, label, score, "");
    tile.dataset.band = band;
    if (news && !news.complete) tile.title = "not a NEWS2 score; missing: " + news.missing.join(", ");
    nums.append(tile);
    card.append(head, meta, nums);
    box.append(card);
  }
  const o = s.outbox || {};
  const dl = document.getElementById("outbox");
  dl.replaceChildren();
  const rows = o.available ? [
    ["waiting", o.waiting + (o.failed ? " (" + o.failed + " refused)" : "")],
    ["oldest waiting", o.oldest_waiting ? fmtAge(o.oldest_waiting_age_s) + " old" : "—"],
    ["last successful sync", o.sync_configured ? fmtTime(o.last_success) : "no backend configured"],
    ["last backend error", o.last_error || "none"],
    ["stored", o.total],
  ] : [["outbox", "not available"]];
  for (const [k, v] of rows) { dl.append(el("dt", null, k), el("dd", null, v)); }
  checkStale();
}

function checkStale() {
  const banner = document.getElementById("stale");
  const silentFor = (Date.now() - view.lastMessage) / 1000;
  let text = "";
  if (!view.lastMessage) {
    text = "Waiting for the gateway…";
  } else if (silentFor > view.staleS) {
    text = "STALE DATA: nothing from the gateway for " + Math.round(silentFor) +
           " s (daemon stopped or connection lost). Values below are old.";
  } else if (view.status) {
    const since = (Date.now() - view.statusAt) / 1000;
    const age = src => src.waveform_age_s === null ? null : src.waveform_age_s + since;
    const silent = view.status.sources.filter(src => src.silent ||
                                              (age(src) !== null && age(src) > view.staleS));
    if (silent.length) {
      text = "STALE DATA: no signal from " + silent.map(src => "device " + src.device + " (" +
             (src.link === "disconnected" ? "disconnected" :
              age(src) === null ? "no sample yet" : fmtAge(age(src)) + " silent") +
             ")").join(", ");
    }
  }
  banner.textContent = text;
  banner.hidden = !text;
  document.body.classList.toggle("stale", !!text);
}

/* ---- episodes and evidence -------------------------------------------------------- */

async function loadEpisodes() {
  let rows;
  try {
    const r = await fetch("/api/episodes?limit=50", { cache: "no-store" });
    if (!r.ok) return;
    rows = await r.json();
  } catch (e) { return; }
  const body = document.querySelector("#episodes tbody");
  body.replaceChildren();
  document.getElementById("no-episodes").hidden = rows.length > 0;
  for (const ep of rows) {
    const tr = el("tr");
    tr.dataset.id = ep.id;
    if (ep.id === view.selected) tr.className = "selected";
    tr.append(el("td", null, fmtTime(ep.onset)), el("td", null, ep.kind),
              el("td", "prio-" + ep.priority, ep.priority),
              el("td", null, ep.duration_s.toFixed(1) + " s"), el("td", null, ep.status),
              el("td", null, ep.device + "/" + ep.stream), el("td", null, ep.synced ? "yes" : "no"));
    tr.addEventListener("click", () => showEvidence(ep));
    body.append(tr);
  }
}

let evidencePlot = null;

async function showEvidence(ep) {
  view.selected = ep.id;
  for (const tr of document.querySelectorAll("#episodes tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.id === ep.id);
  }
  const panel = document.getElementById("evidence-panel");
  const notes = document.getElementById("evidence-notes");
  panel.hidden = false;
  document.getElementById("evidence-title").textContent = "Evidence: " + ep.kind + " (" +
      ep.priority + ", " + ep.status + ") on " + ep.device + "/" + ep.stream + ", onset " +
      fmtTime(ep.onset) + ", " + ep.duration_s.toFixed(1) + " s";
  const box = document.getElementById("evidence-plot");
  box.replaceChildren();
  notes.textContent = "loading…";
  let ev;
  try {
    const r = await fetch("/api/episodes/" + encodeURIComponent(ep.id) + "/evidence",
                          { cache: "no-store" });
    ev = await r.json();
    if (!r.ok) { notes.textContent = ev.error || "no evidence"; return; }
  } catch (e) { notes.textContent = "evidence not available"; return; }
  const xs = ev.y.map((_, i) => i / ev.fs);
  const st = { fs: ev.fs, beats: ev.beats };
  const opts = {
    width: Math.max(300, box.clientWidth || document.body.clientWidth - 60), height: 200,
    legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false }, y: { range: headroom } },
    axes: [{ stroke: "#8b949e", grid: { stroke: "#2b3440" }, values: (u, v) => v.map(x => x + " s") },
           { stroke: "#8b949e", grid: { stroke: "#2b3440" }, size: 50 }],
    series: [{}, { stroke: KIND_COLOURS[ev.kind] || "#ddd", width: 1.2, points: { show: false } }],
    hooks: { draw: [u => {
      drawBeatsAt(u, st);
      if (ev.onset_s !== null) {
        const x = u.valToPos(ev.onset_s, "x", true);
        u.ctx.save(); u.ctx.strokeStyle = "#f39c12"; u.ctx.setLineDash([6, 4]);
        u.ctx.beginPath(); u.ctx.moveTo(x, u.bbox.top); u.ctx.lineTo(x, u.bbox.top + u.bbox.height);
        u.ctx.stroke(); u.ctx.restore();
      }
    }] },
  };
  evidencePlot = new uPlot(opts, [xs, ev.y], box);
  const rr = ev.rr.map(r => r[1]);
  const q = ev.quality.map(x => x[2]);
  const counts = {};
  for (const [, l] of ev.beats) counts[l] = (counts[l] || 0) + 1;
  notes.textContent = (ev.kind === "ecg" ? "Beats: " + (Object.entries(counts).map(([k, v]) => k + " " + v)
      .join(", ") || "none") + " · RR " + (rr.length ? Math.round(Math.min(...rr) * 1000) + "–" +
      Math.round(Math.max(...rr) * 1000) + " ms" : "—") + " · quality " +
      (q.length ? Math.min(...q).toFixed(2) + "–" + Math.max(...q).toFixed(2) : "—") + " · " : "") +
      (ev.onset_s !== null ? "dashed line: onset. " : "the snippet's position relative to the onset " +
      "was not recorded (an episode raised long after its onset keeps the latest stretch). ") + "Beats re-detected on the snippet by the live detectors (the first seconds are their warm-up). " +
      "`edge events show " + ep.id + " --png FILE` writes it as an image.";
}

function drawBeatsAt(u, st) {
  const ctx = u.ctx, top = u.bbox.top;
  ctx.save();
  ctx.font = "bold " + Math.round(12 * devicePixelRatio) + "px system-ui, sans-serif";
  ctx.textAlign = "center";
  for (const [index, label] of st.beats) {
    const x = u.valToPos(index / st.fs, "x", true);
    ctx.fillStyle = BEAT_COLOURS[label] || "#aaa";
    ctx.fillText(label, x, top + 14 * devicePixelRatio);
  }
  ctx.restore();
}

/* ---- start ---------------------------------------------------------------------------- */

window.addEventListener("resize", () => {
  for (const st of Object.values(view.strips)) {
    st.plot.setSize({ width: Math.max(300, st.plotBox.clientWidth), height: st.plot.height });
  }
});
setInterval(checkStale, 500);
connect();
