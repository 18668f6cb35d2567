// The owner console's page: polls /api/overview every second and renders it; posts the grant
// form and the session actions. Plain JavaScript, no build step, no dependencies.
"use strict";

const $ = (sel) => document.querySelector(sel);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
let overview = null;
let draft = null;
let pendingAction = null;
let lastAccounts = "";
let lastCharts = "";

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
const short = (hex) => (hex ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : "");

function say(text, kind) {
  const m = $("#message");
  m.textContent = text;
  m.className = kind;
  m.hidden = !text;
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  let json = null;
  try { json = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error((json && json.error) || `${response.status} ${response.statusText}`);
  return json;
}

// ---- accounts and sessions ----

function meterHtml(m) {
  const width = Math.min(m.percent, 100);
  const badge = m.level === "0" ? "" : `<span class="badge l${m.level}">${m.level} %</span>`;
  return `<div class="meter" data-level="${m.level}" data-label="${esc(m.label)}">
    <div>${esc(m.label)}: ${esc(m.used)} of ${esc(m.limit)} (${m.percent} %)${badge}</div>
    <div class="bar"><div class="fill" style="width:${width}%"></div></div></div>`;
}

function sessionHtml(s, color) {
  const buttons = [
    s.canPause ? `<button class="pause" data-session="${s.id}">Pause</button>` : "",
    s.canResume ? `<button class="resume" data-session="${s.id}">Resume</button>` : "",
    s.canRevoke ? `<button class="revoke danger" data-session="${s.id}">Revoke</button>` : "",
  ].join("");
  const why = s.justification ? `<p class="why"><b>Why:</b> ${esc(s.justification)}</p>` : "";
  const key = s.keyFile ? `<div class="muted">session key file (give it to the agent): <code>${esc(s.keyFile)}</code></div>` : "";
  return `<div class="session" data-session="${s.id}" data-state="${s.state}">
    <div><span class="swatch" style="color:${color}">■</span> session <code title="${s.id}">${short(s.id)}</code>
      <span class="state">${esc(s.stateWords)}</span>
      <span class="muted">key ${short(s.sessionKey)}</span></div>
    ${why}
    <ul class="scopes">${s.scopes.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>
    <div class="meters">${s.meters.map(meterHtml).join("")}</div>
    <div class="left">left: <b class="left-period">${esc(s.leftThisPeriod)}</b> this period,
      <b class="left-total">${esc(s.leftInTotal)}</b> in total</div>
    <div class="muted">session file <code>${esc(s.source)}</code></div>${key}
    <div class="actions">${buttons}</div></div>`;
}

function renderAccounts(o) {
  const colors = sessionColors(o);
  if (!o.accounts.length) {
    $("#accounts").innerHTML = `<p class="muted">No sessions yet. Grant one below, or start the console with a sessions directory.</p>`;
    return;
  }
  $("#accounts").innerHTML = o.accounts.map((a) => `<div class="account" data-account="${a.address}">
      <div class="account-head"><b>account <code>${a.address}</code></b>
        <span>holds ${esc(a.balance)}</span>
        <span class="muted">${a.deployed ? "deployed" : "not deployed yet (its first payment deploys it)"}</span>
        <span class="muted">owner <code>${esc(a.owner || "?")}</code></span>
        <button class="revoke-all danger" data-account="${a.address}">Revoke all</button></div>
      ${a.sessions.length ? a.sessions.map((s) => sessionHtml(s, colors[s.id])).join("") : `<p class="muted">no sessions</p>`}
    </div>`).join("");
}

// ---- charts ----

function sessionColors(o) {
  const colors = {};
  let i = 0;
  for (const a of o.accounts) for (const s of a.sessions) colors[s.id] = COLORS[i++ % COLORS.length];
  return colors;
}

/// Cumulative spend per key over time, as SVG polylines.
function drawChart(svg, legend, receipts, keyOf, colorOf, labelOf, now) {
  const series = new Map();
  for (const r of receipts) {
    const key = keyOf(r);
    if (!series.has(key)) series.set(key, []);
    series.get(key).push(r);
  }
  svg.setAttribute("data-points", String(receipts.length));
  svg.setAttribute("data-series", String(series.size));
  if (!receipts.length) {
    svg.innerHTML = `<text x="320" y="120" text-anchor="middle" fill="#999">no payments yet</text>`;
    legend.innerHTML = "";
    return;
  }
  // A little room before the first payment, so a step at the start is visible.
  const first = Math.min(...receipts.map((r) => r.time));
  const t1 = Math.max(now, first + 1);
  const t0 = first - Math.max(2, Math.round((t1 - first) * 0.05));
  let ymax = 0;
  for (const points of series.values()) ymax = Math.max(ymax, points.reduce((sum, r) => sum + r.amount, 0));
  ymax = ymax || 1;
  const [L, R, T, B] = [50, 630, 12, 210];
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (R - L);
  const y = (v) => B - (v / ymax) * (B - T);
  let out = `<line x1="${L}" y1="${B}" x2="${R}" y2="${B}" stroke="#999"/><line x1="${L}" y1="${T}" x2="${L}" y2="${B}" stroke="#999"/>
    <text x="${L - 4}" y="${T + 8}" text-anchor="end" font-size="10">${ymax.toFixed(2)}</text>
    <text x="${L - 4}" y="${B}" text-anchor="end" font-size="10">0</text>
    <text x="${R}" y="${B + 14}" text-anchor="end" font-size="10">now</text>
    <text x="${L}" y="${B + 14}" font-size="10">${new Date(t0 * 1000).toISOString().slice(11, 19)} UTC</text>`;
  const items = [];
  let i = 0;
  for (const [key, points] of series) {
    const color = colorOf(key, i++);
    let sum = 0;
    let path = `${x(t0)},${y(0)}`;
    for (const r of points) {
      path += ` ${x(r.time)},${y(sum)}`;
      sum += r.amount;
      path += ` ${x(r.time)},${y(sum)}`;
    }
    path += ` ${x(t1)},${y(sum)}`;
    out += `<polyline class="series" data-key="${esc(key)}" fill="none" stroke="${color}" stroke-width="2" points="${path}"/>`;
    for (const r of points) out += `<circle cx="${x(r.time)}" cy="${y(points.slice(0, points.indexOf(r) + 1).reduce((s, p) => s + p.amount, 0))}" r="3" fill="${color}"><title>${esc(r.amountText)} to ${r.merchant} (tx ${r.tx})</title></circle>`;
    items.push(`<li><span style="background:${color}"></span>${esc(labelOf(key))}: ${sum.toFixed(4).replace(/\.?0+$/, "")} ${esc(overview.token.symbol)} in ${points.length} payment${points.length === 1 ? "" : "s"}</li>`);
  }
  svg.innerHTML = out;
  legend.innerHTML = items.join("");
}

function renderCharts(o) {
  const colors = sessionColors(o);
  drawChart($("#chart-sessions"), $("#legend-sessions"), o.receipts, (r) => r.session || "unattributed",
    (key, i) => colors[key] || COLORS[i % COLORS.length], (key) => (key === "unattributed" ? key : `session ${short(key)}`), o.now);
  drawChart($("#chart-merchants"), $("#legend-merchants"), o.receipts, (r) => r.merchant,
    (_, i) => COLORS[(i + 3) % COLORS.length], (key) => `merchant ${short(key)}`, o.now);
}

async function refresh() {
  try {
    const o = await api("/api/overview");
    overview = o;
    const signing = o.signing === "key" ? "the console signs with the owner key" : "signatures are made elsewhere and pasted here";
    $("#network").textContent = `chain ${o.chainId} · ${o.rpcUrl} · settlement ${o.settlement} · ${o.token.symbol} ${o.token.address} · owner ${o.owner || "not set"} (${signing})`;
    // Re-render only what changed, so a button is not replaced under the owner's pointer.
    const accounts = JSON.stringify(o.accounts);
    if (accounts !== lastAccounts) { lastAccounts = accounts; renderAccounts(o); }
    const charts = JSON.stringify([o.receipts, o.now, accounts]);
    if (charts !== lastCharts) { lastCharts = charts; renderCharts(o); }
    document.body.dataset.loaded = "true";
  } catch (e) {
    $("#network").textContent = `cannot read the chain: ${e.message}`;
  }
}

// ---- grant ----

$("#grant-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = Object.fromEntries(new FormData(event.target).entries());
  $("#preview-panel").hidden = true;
  draft = null;
  try {
    const d = await api("/api/grant/preview", form);
    draft = d;
    $("#preview-sentence").textContent = d.sentence;
    $("#preview-scopes").innerHTML = d.scopes.map((w) => `<li>${esc(w)}</li>`).join("") +
      `<li>account ${esc(d.account)}, session key ${esc(d.sessionKey)}</li>`;
    $("#preview-typed").textContent = JSON.stringify(d.typedData, null, 2);
    $("#grant-signature-label").hidden = d.signing === "key";
    $("#confirm-grant").textContent = d.signing === "key" ? "Sign and grant" : "Grant with this signature";
    $("#preview-panel").hidden = false;
    say("", "");
  } catch (e) {
    say(e.message, "error");
  }
});

$("#confirm-grant").addEventListener("click", async () => {
  if (!draft) return;
  const body = { draftId: draft.draftId };
  const signature = $("#grant-signature").value.trim();
  if (signature) body.signature = signature;
  try {
    const g = await api("/api/grant", body);
    $("#preview-panel").hidden = true;
    draft = null;
    say(`Session ${g.sessionId} granted on ${g.account}. Session file: ${g.sessionFile}${g.keyFile ? `, key file: ${g.keyFile}` : ""}`, "ok");
    await refresh();
  } catch (e) {
    say(e.message, "error");
  }
});

$("#cancel-grant").addEventListener("click", () => { $("#preview-panel").hidden = true; draft = null; });

// ---- pause, resume, revoke, revoke all ----

async function act(request) {
  try {
    const r = await api("/api/action", request);
    if (r.done) {
      $("#sign-panel").hidden = true;
      pendingAction = null;
      say(`${r.message} (tx ${r.tx})`, "ok");
      await refresh();
      return;
    }
    pendingAction = request;
    $("#sign-what").textContent = r.message + (r.sign.relayer ? "" : " (no relayer key configured: only the transaction route works)");
    $("#sign-typed").textContent = JSON.stringify({ digest: r.sign.digest, typedData: r.sign.typedData }, null, 2);
    $("#sign-tx").textContent = JSON.stringify(r.sign.deploy ? [r.sign.deploy, r.sign.tx] : r.sign.tx, null, 2);
    $("#sign-panel").hidden = false;
  } catch (e) {
    say(e.message, "error");
  }
}

$("#accounts").addEventListener("click", (event) => {
  const b = event.target.closest("button");
  if (!b) return;
  const action = ["pause", "resume", "revoke-all", "revoke"].find((c) => b.classList.contains(c));
  if (action === "revoke-all") {
    if (!confirm(`Revoke every session of ${b.dataset.account}?`)) return;
    act({ action, account: b.dataset.account });
  } else if (action) {
    act({ action, session: b.dataset.session });
  }
});

$("#submit-signature").addEventListener("click", () => {
  if (pendingAction) act({ ...pendingAction, signature: $("#action-signature").value.trim() });
});
$("#cancel-signature").addEventListener("click", () => { $("#sign-panel").hidden = true; pendingAction = null; });

refresh();
setInterval(refresh, 1000);
