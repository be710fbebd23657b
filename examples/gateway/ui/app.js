"use strict";
// The live status page: it draws what /_roster/events streams (the same
// JSON as /_roster/status), with no dependency, charts drawn as SVG.

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) if (k !== undefined && k !== null && k !== false) e.append(k);
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k);
  return e;
}

// --- formatting -----------------------------------------------------------

function fmtRate(r) {
  if (!r) return "0";
  if (r >= 100) return r.toFixed(0);
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(2).replace(/\.?0+$/, "") || "0";
}
function fmtMs(ms) {
  if (!ms) return "–";
  if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
  if (ms >= 10) return ms.toFixed(0) + " ms";
  if (ms >= 1) return ms.toFixed(1) + " ms";
  return (ms * 1000).toFixed(0) + " µs";
}
function fmtDur(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60), r = s % 60;
  if (m < 60) return m + "m " + String(r).padStart(2, "0") + "s";
  const h = Math.floor(m / 60);
  return h + "h " + String(m % 60).padStart(2, "0") + "m";
}
function fmtClock(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
}
function pct(errors, rate) { return rate > 0 ? (100 * errors / rate) : 0; }

// --- sparklines -------------------------------------------------------------

// spark draws one or two series (oldest first) as a small SVG chart with a
// shaded area under the first. An idle series (null) is a dashed baseline.
function spark(series, opts) {
  const w = opts.w || 120, h = opts.h || 28, pad = 2;
  const s = svg("svg", {class: "spark", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none",
    "data-series": opts.name, "data-points": series && series[0] ? series[0].length : 0});
  const tip = svg("title");
  tip.textContent = opts.title || "";
  s.append(tip);
  if (!series || !series[0] || series[0].length === 0) {
    s.append(svg("line", {x1: 0, y1: h - pad, x2: w, y2: h - pad, stroke: "#cfd5df", "stroke-dasharray": "3 3", "stroke-width": 1}));
    return s;
  }
  // The x axis spans the whole window once full; before, at least a
  // minute, so that a young chart is not a speck at the right edge.
  const n = Math.min(opts.points || 150, Math.max(30, series[0].length));
  let max = opts.min || 0;
  for (const ser of series) for (const v of ser) if (v > max) max = v;
  if (max <= 0) max = 1;
  const x = (i, len) => w - (len - 1 - i) * (w / Math.max(n - 1, 1));
  const y = (v) => h - pad - (v / max) * (h - 2 * pad);
  series.forEach((ser, k) => {
    const color = opts.colors[k];
    let d = "";
    ser.forEach((v, i) => { d += (i ? "L" : "M") + x(i, ser.length).toFixed(1) + " " + y(v).toFixed(1); });
    if (k === 0) {
      const area = d + `L${x(ser.length - 1, ser.length).toFixed(1)} ${h - pad}L${x(0, ser.length).toFixed(1)} ${h - pad}Z`;
      s.append(svg("path", {d: area, fill: color, "fill-opacity": 0.12, stroke: "none"}));
    }
    s.append(svg("path", {d, fill: "none", stroke: color, "stroke-width": 1.5, "stroke-linejoin": "round", "vector-effect": "non-scaling-stroke"}));
  });
  return s;
}

const C = {rate: "#3b6fe0", err: "#d1343c", p50: "#0e9384", p99: "#8a55d7"};

function charts(t, w, h, points) {
  const c = t.chart;
  const get = (k) => c ? c[k] : null;
  return {
    rate: spark(c ? [c.rate] : null, {name: "rate", colors: [C.rate], w, h, points,
      title: `requests per second over the last ${fmtDur(points * slotS)}; now ${fmtRate(t.rate)}/s`}),
    errors: spark(c ? [c.errors] : null, {name: "errors", colors: [C.err], w, h, points, min: 1,
      title: `failed requests per second (5xx or no answer); now ${fmtRate(t.errors)}/s`}),
    latency: spark(c ? [get("p99_ms"), get("p50_ms")] : null, {name: "latency", colors: [C.p99, C.p50], w, h, points,
      title: `latency: p99 (purple) and p50 (teal); now ${fmtMs(t.p99_ms)} / ${fmtMs(t.p50_ms)}`}),
  };
}

// --- state ------------------------------------------------------------------

let slotS = 2, points = 150;
let lastSeq = 0, firstRender = true;
const open = new Set(); // services whose instances are shown when the gateway lists only some
let source = null, detailKey = "";
let last = null;

function connect() {
  const conn = $("conn");
  const detail = [...open].sort().join(",");
  detailKey = detail;
  if (source) source.close();
  source = new EventSource("events" + (detail ? "?detail=" + encodeURIComponent(detail) : ""));
  source.onopen = () => { conn.textContent = "live"; conn.className = "pill ok"; };
  source.onmessage = (m) => { last = JSON.parse(m.data); render(last); };
  source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "pill bad"; };
}

function toggle(name) {
  if (open.has(name)) open.delete(name); else open.add(name);
  connect();
}

// --- rendering ----------------------------------------------------------------

function render(s) {
  slotS = s.gateway.slot_s || 2;
  points = Math.round(300 / slotS);
  renderTop(s);
  renderSummary(s);
  renderServices(s);
  renderLeaders(s);
  renderLocks(s);
  renderTimeline(s);
  $("foot").textContent = `gateway pid ${s.gateway.pid} · up ${fmtDur(s.gateway.uptime_s)} · updated ${fmtClock(s.time)}`;
  firstRender = false;
}

function renderTop(s) {
  const e = s.etcd, pill = $("etcd");
  const members = e.members || [];
  const leader = members.find((m) => m.leader);
  if (e.healthy) {
    pill.className = e.view_error ? "pill wait" : "pill ok";
    pill.textContent = `etcd healthy · ${members.length} member${members.length === 1 ? "" : "s"}` + (e.embedded ? " (embedded)" : "");
  } else {
    pill.className = "pill bad";
    pill.textContent = "etcd unreachable";
  }
  pill.title = [
    "etcd endpoints: " + (e.endpoints || []).join(", "),
    e.healthy ? "answers a linearizable read (it has a Raft leader and a quorum)" : "no answer: " + (e.error || ""),
    "store revision " + e.revision + " (etcd's logical clock: every write adds one)",
    members.length ? "members: " + members.map((m) => m.name + (m.leader ? " (Raft leader)" : "")).join(", ") : "",
    leader ? "" : "",
    e.view_error ? "view out of date: " + e.view_error : "",
  ].filter(Boolean).join("\n");
  const g = s.gateway;
  const gw = $("gw");
  gw.textContent = (g.name ? g.name + " · " : "") + g.picker + " · " + g.listen;
  gw.title = `this gateway (pid ${g.pid}) balances with ${g.picker}` +
    (g.workers && g.workers.length ? "\nworker processes: " + g.workers.map((w) => `${w.id} pid ${w.pid} ${w.state}`).join(", ") : "");
}

function card(label, big, detail, extra, attrs) {
  return el("div", Object.assign({class: "card"}, attrs || {}), el("div", {class: "label"}, label),
    el("div", {class: "big"}, big), detail ? el("div", {class: "detail"}, detail) : null, extra);
}

function renderSummary(s) {
  let serving = 0, draining = 0, ejected = 0, total = 0, rate = 0, errors = 0, p99 = 0, inflight = 0;
  let sum = null, errSum = null;
  const add = (acc, a) => {
    if (!acc) return a.slice();
    const off = acc.length - a.length;
    if (off < 0) return a.map((v, i) => v + (i + off >= 0 ? acc[i + off] : 0));
    a.forEach((v, i) => { acc[i + off] += v; });
    return acc;
  };
  for (const svc of s.services) {
    serving += svc.serving; draining += svc.draining; ejected += svc.ejected; total += svc.instance_count;
    rate += svc.rate; errors += svc.errors; inflight += svc.inflight; p99 = Math.max(p99, svc.p99_ms);
    if (svc.chart) { sum = add(sum, svc.chart.rate); errSum = add(errSum, svc.chart.errors); }
  }
  const b = (cls, n, word, tip) => el("span", {class: "badge " + cls, title: tip}, el("span", {class: "dot"}), n + " " + word);
  const names = s.services.slice(0, 6).map((x) => el("span", {class: "chip"}, x.name));
  if (s.services.length > 6) names.push(el("span", {class: "chip"}, `+${s.services.length - 6} more`));
  $("summary").replaceChildren(
    card("Services", String(s.services.length), [el("span", {}, `${total} instance${total === 1 ? "" : "s"}`)],
      el("div", {class: "queue"}, names), {"data-card": "services"}),
    card("Instances", [String(serving), el("small", {}, "serving")], [
      b("draining", draining, "draining", "Draining: the instance's value in etcd says status=draining; pickers send it no new requests"),
      b("ejected", ejected, "ejected", "Ejected: this gateway's picker saw failed calls in a row and skips it for a cool-down; etcd still lists it"),
    ], null, {"data-card": "instances"}),
    card("Traffic", [fmtRate(rate), el("small", {}, "req/s")], [el("span", {}, `${inflight} in flight`)],
      spark(sum ? [sum] : null, {name: "traffic", colors: [C.rate], w: 300, h: 30, points, title: "requests per second through this gateway, all services"}), {"data-card": "traffic"}),
    card("Errors", [pct(errors, rate).toFixed(pct(errors, rate) < 10 ? 1 : 0) + "%", el("small", {}, "of requests")],
      [el("span", {}, `${fmtRate(errors)}/s failed`), el("span", {}, `worst p99 ${fmtMs(p99)}`)],
      spark(errSum ? [errSum] : null, {name: "errors-total", colors: [C.err], w: 300, h: 30, points, min: 1, title: "failed requests per second, all services"}), {"data-card": "errors"}),
  );
}

function leadersOf(s) {
  const m = new Map();
  for (const e of s.elections || []) m.set(e.leader, e.name);
  return m;
}

function statusBadge(i) {
  const tips = {
    serving: "Serving: registered under a live etcd lease, and picked for new requests.",
    draining: "Draining: the instance's value in etcd has status=draining, so pickers give it no new requests while it finishes what it has.",
    ejected: "Ejected: passive health checking in this gateway's picker: calls failed in a row, so it is skipped for a cool-down. etcd still lists it.",
  };
  return el("span", {class: "badge " + i.status, title: tips[i.status] || i.status}, el("span", {class: "dot"}), i.status);
}

function renderServices(s) {
  const list = $("service-list");
  if (!s.services.length) {
    list.replaceChildren(el("p", {class: "empty"}, "No service is registered yet. Start a worker: ", el("code", {}, "go run ./examples/worker")));
    return;
  }
  const leads = leadersOf(s);
  const some = s.gateway.detail === "some";
  const out = [];
  for (const svc of s.services) {
    const c = charts(svc, 200, 34, points);
    const counts = el("span", {class: "counts"},
      el("span", {class: "badge serving"}, el("span", {class: "dot"}), svc.serving + " serving"),
      svc.draining ? el("span", {class: "badge draining"}, el("span", {class: "dot"}), svc.draining + " draining") : null,
      svc.ejected ? el("span", {class: "badge ejected"}, el("span", {class: "dot"}), svc.ejected + " ejected") : null,
      svc.instance_count === 0 ? el("span", {class: "badge none"}, "no instance") : null);
    const viewTip = `This gateway's view of ${svc.name} is a discovery cache: one etcd list at a revision, then a watch from the next one.\n` +
      `etcd revision ${svc.revision}; last confirmed ${svc.view_age_s.toFixed(1)} s ago` +
      (svc.skipped ? `\n${svc.skipped} key(s) under the service are not valid instances and are skipped` : "") +
      (svc.error ? "\nout of date: " + svc.error : "");
    const view = el("span", {class: "view" + (svc.error ? " stale" : ""), title: viewTip},
      svc.error ? "view out of date" : `view ${svc.view_age_s < 10 ? svc.view_age_s.toFixed(1) : fmtDur(svc.view_age_s)} s old`);
    const toggleBtn = some ? el("button", {class: "toggle", title: "show or hide this service's instances"}, open.has(svc.name) ? "▾" : "▸") : null;
    if (toggleBtn) toggleBtn.onclick = () => toggle(svc.name);
    const head = el("div", {class: "svc-head"}, el("span", {class: "svc-name"}, toggleBtn, svc.name), counts, view);
    const metric = (k, v, chart, tip) => el("div", {class: "metric", title: tip}, el("div", {class: "k"}, k), el("div", {class: "v"}, v), chart);
    const metrics = el("div", {class: "metrics"},
      metric("Requests", fmtRate(svc.rate) + "/s", c.rate, `${svc.requests} requests since the gateway started`),
      metric("Errors", `${fmtRate(svc.errors)}/s · ${pct(svc.errors, svc.rate).toFixed(1)}%`, c.errors, `${svc.failed} failed since the gateway started (5xx, or no instance answered)`),
      metric("Latency p50", fmtMs(svc.p50_ms), spark(svc.chart ? [svc.chart.p50_ms] : null, {name: "p50", colors: [C.p50], w: 200, h: 34, points, title: "median latency"}), "median time to answer, over the last slot"),
      metric("Latency p99", fmtMs(svc.p99_ms), spark(svc.chart ? [svc.chart.p99_ms] : null, {name: "p99", colors: [C.p99], w: 200, h: 34, points, title: "99th percentile latency"}), "99th percentile time to answer, over the last slot"));
    const box = el("div", {class: "svc", "data-service": svc.name}, head, metrics);
    if (svc.instances) {
      box.append(instanceTable(svc, leads));
    } else if (some) {
      const b = el("button", {class: "toggle", title: "list this service's instances"}, `show ${svc.instance_count} instance${svc.instance_count === 1 ? "" : "s"}`);
      b.onclick = () => toggle(svc.name);
      box.append(el("div", {class: "empty"}, b));
    }
    out.push(box);
  }
  list.replaceChildren(...out);
}

function instanceTable(svc, leads) {
  const th = (t, tip, cls) => el("th", {title: tip, class: cls}, t);
  const rows = svc.instances.map((i) => {
    const c = charts(i, 120, 26, points);
    const pid = i.metadata && i.metadata.pid ? " · pid " + i.metadata.pid : "";
    const leading = leads.get(i.id);
    return el("tr", {class: i.status, "data-instance": i.id, "data-status": i.status},
      el("td", {class: "first"},
        el("span", {class: "id"}, i.id), leading ? el("span", {class: "star", title: `leads the election "${leading}"`, "data-leads": leading}, "★") : null,
        el("div", {class: "addr mono"}, i.addr + pid)),
      el("td", {"data-label": "Status"}, el("div", {}, statusBadge(i), i.reason ? el("span", {class: "reason"}, i.reason) : null)),
      el("td", {class: "num", "data-label": "In flight", title: "requests this gateway has sent it that have not finished"}, String(i.inflight)),
      el("td", {class: "sparkcell", "data-label": "Requests/s"}, el("div", {}, el("div", {class: "v"}, fmtRate(i.rate) + "/s"), c.rate)),
      el("td", {class: "sparkcell", "data-label": "Errors/s"}, el("div", {}, el("div", {class: "v"}, fmtRate(i.errors) + "/s" + (i.failed ? ` · ${i.failed} total` : "")), c.errors)),
      el("td", {class: "sparkcell", "data-label": "p50 / p99"}, el("div", {}, el("div", {class: "v"}, fmtMs(i.p50_ms) + " / " + fmtMs(i.p99_ms)), c.latency)));
  });
  return el("table", {class: "inst"},
    el("thead", {}, el("tr", {},
      th("Instance", "the instance ID: the last part of its etcd key <namespace>/services/<service>/<id>"),
      th("Status", "serving, draining (its etcd value says so) or ejected (this gateway's passive health check)"),
      th("In flight", "", "num"),
      th("Requests/s", "attempts this gateway sent it, per second"),
      th("Errors/s", "attempts that got no answer or a 5xx"),
      th("p50 / p99", "latency of its answers"))),
    el("tbody", {}, rows));
}

function renderLeaders(s) {
  const list = $("election-list");
  if (!s.elections.length) { list.replaceChildren(el("p", {class: "empty"}, "No election.")); return; }
  list.replaceChildren(...s.elections.map((e) => {
    const next = (e.candidates || []).slice(1);
    return el("div", {class: "item", "data-election": e.name},
      el("div", {class: "item-head"},
        el("span", {class: "item-name", title: "election key prefix " + e.prefix}, e.name),
        el("span", {class: "token", title: `fencing token ${e.token}: the create revision of the leader's key in etcd (${e.key}). Writes guarded by it are refused once another leader took over.`, "data-token": e.token}, "token " + e.token)),
      el("div", {class: "who", "data-leader": e.leader}, e.leader),
      el("div", {class: "facts"},
        el("span", {"data-tenure": Math.floor(e.tenure_s), title: e.tenure_known ? `leads since ${fmtClock(e.since)}` : "it led already when this gateway started"},
          "leading for ", el("b", {}, (e.tenure_known ? "" : "≥ ") + fmtDur(e.tenure_s))),
        el("span", {title: "the etcd lease its candidacy lives on: if the process stops renewing it, the lease expires after its TTL and the next candidate leads"}, "lease ", el("code", {}, e.lease))),
      next.length ? el("div", {class: "queue"}, el("span", {class: "label", title: "candidates in line, by the create revision of their keys"}, "next in line"),
        next.map((c) => el("span", {class: "chip", title: `key ${c.key}, token ${c.token}`, "data-candidate": c.who}, c.who))) : null);
  }));
}

const lockIcon = () => svg("svg", {class: "lockicon", viewBox: "0 0 24 24"}, svg("rect", {x: 5, y: 11, width: 14, height: 10, rx: 2}), svg("path", {d: "M8 11V8a4 4 0 0 1 8 0v3"}));

function renderLocks(s) {
  const list = $("lock-list");
  if (!s.locks.length) { list.replaceChildren(el("p", {class: "empty"}, "No lock is held or waited for.")); return; }
  const whoTip = (e) => (e.known ? `${e.who}: the candidate on the same etcd lease` : "a client that is not an election candidate (etcdctl lock, another program)") +
    `\nlease ${e.lease}, key ${e.key}, token ${e.token}`;
  list.replaceChildren(...s.locks.map((l) => el("div", {class: "item", "data-lock": l.name},
    el("div", {class: "item-head"},
      el("span", {class: "item-name", title: "lock key prefix " + l.prefix}, l.name),
      el("span", {class: "token", title: "fencing token of the holder: the create revision of its key; writes fenced by a Hold are refused once it lost the lock"}, "token " + l.holder.token)),
    el("div", {class: "holder"}, lockIcon(),
      el("span", {class: "who" + (l.holder.known ? "" : " outsider"), "data-holder": l.holder.who, title: whoTip(l.holder)}, l.holder.who),
      el("span", {class: "facts"}, "held for ", el("b", {}, fmtDur(l.holder.for_s)))),
    l.holder.known ? null : el("div", {class: "hint", title: whoTip(l.holder)}, "held by a client that is not an election candidate (etcdctl lock, another program)"),
    el("div", {class: "queue"}, el("span", {class: "label"}, l.waiters.length ? `waiting (${l.waiters.length})` : "nobody waiting"),
      l.waiters.map((w) => el("span", {class: "chip" + (w.known ? "" : " mono"), title: whoTip(w), "data-waiter": w.who}, w.who, el("small", {}, fmtDur(w.for_s))))))));
}

const kindTips = {
  joined: "registered: its key appeared under the service's prefix",
  draining: "its etcd value now says status=draining",
  serving: "its etcd value says serving again",
  left: "deregistered after draining: a graceful stop",
  lost: "its key went away while it was serving: its lease expired (the process stopped renewing it) or the key was deleted",
  ejected: "this gateway's picker stopped sending it requests after failed calls",
  restored: "back in this gateway's rotation after the ejection cool-down",
  leader: "the oldest key in the election's prefix changed",
  lease: "the instance's key came back under a new lease, written by the same process: its registrar restored it after the lease was lost (expired during a pause or partition, or revoked)",
  drain: "an operator wrote a drain request key (<namespace>/drain/<service>/<id>); the instance's registrar applies it",
  undrain: "the operator's drain request key was deleted",
};

function renderTimeline(s) {
  const list = $("event-list");
  const evs = s.timeline || [];
  if (!evs.length) { list.replaceChildren(el("li", {class: "empty"}, "Nothing happened yet.")); return; }
  const now = new Date(s.time).getTime();
  const top = evs[0].seq;
  list.replaceChildren(...evs.slice(0, 100).map((e) => el("li", {class: "k-" + e.kind + (!firstRender && e.seq > lastSeq ? " fresh" : ""),
    "data-kind": e.kind, "data-instance": e.instance || null, title: kindTips[e.kind] || ""},
    el("span", {class: "dot"}), el("time", {datetime: e.time}, fmtClock(e.time)),
    el("span", {class: "text"}, e.text, el("span", {class: "ago"}, fmtDur((now - new Date(e.time).getTime()) / 1000) + " ago")))));
  lastSeq = top;
}

connect();
