// The monitoring dashboard of the selected model: active alerts, traffic and latency over the window,
// accuracy from feedback, and drift per feature (reference vs live shares per bin).
// Only the REST routes the gateway derives from MonitoringService; uses call/el/$ from app.js.
"use strict";

const REFRESH_MS = 3000;
const SVG_NS = "http://www.w3.org/2000/svg";
// Accuracy of the shortest window, sampled on every refresh while the page is open: the contract
// reports accuracy per window, so the trend over time is drawn from these samples.
const accuracyTrend = {};

function svg(width, height, id) {
  const node = document.createElementNS(SVG_NS, "svg");
  node.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (id) node.setAttribute("id", id);
  node.add = (tag, attrs, text) => {
    const child = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) child.setAttribute(k, v);
    if (text !== undefined) child.textContent = text;
    node.append(child);
    return child;
  };
  return node;
}

const num = (v) => Number(v || 0); // int64 fields arrive as strings in proto3 JSON
const pct = (v) => (100 * v).toFixed(1) + "%";
const short = (name) => String(name || "").replace(/^ALERT_RULE_|^FEATURE_KIND_/, "").toLowerCase().replace(/_/g, " ");

function renderAlerts(firing) {
  if (!firing.length) return [el("p", { class: "muted", id: "no-alerts" }, "No alerts firing.")];
  return firing.map((a) => el("div", { class: "alert", "data-rule": short(a.rule), "data-feature": a.feature },
    el("strong", {}, short(a.rule) + (a.feature ? ` · ${a.feature}` : "")),
    el("span", {}, ` ${a.message} (version ${a.version}, window ${a.window}, since ${new Date(a.time).toLocaleTimeString()})`)));
}

function renderTraffic(w) {
  const points = w.timeline || [];
  const summary = el("p", { id: "traffic-summary" },
    `${num(w.request_count)} requests, ${num(w.row_count)} rows, ${num(w.error_count)} errors · latency p50 ` +
    `${w.latency_p50_ms.toFixed(1)} ms, p95 ${w.latency_p95_ms.toFixed(1)} ms, p99 ${w.latency_p99_ms.toFixed(1)} ms`);
  if (!points.length) return [summary];
  const chart = svg(600, 150, "traffic-chart");
  const maxCount = Math.max(...points.map((p) => num(p.request_count)), 1);
  const maxLatency = Math.max(...points.map((p) => p.latency_p99_ms), 1e-9);
  const step = 560 / points.length;
  const y = (v, max) => 120 - (110 * v) / max;
  chart.add("line", { x1: 20, x2: 580, y1: 120, y2: 120, stroke: "#bcc3d1" });
  const line = [];
  points.forEach((p, i) => {
    const x = 20 + i * step;
    const requests = num(p.request_count), errors = num(p.error_count);
    chart.add("rect", { x, y: y(requests, maxCount), width: Math.max(step - 1, 1), height: 120 - y(requests, maxCount),
      fill: "#8aa6cf", class: "traffic-bar" });
    if (errors) chart.add("rect", { x, y: y(errors, maxCount), width: Math.max(step - 1, 1), height: 120 - y(errors, maxCount), fill: "#9d2f2f" });
    if (!requests) return;
    line.push(`${x + step / 2},${y(p.latency_p99_ms, maxLatency)}`);
    chart.add("circle", { cx: x + step / 2, cy: y(p.latency_p99_ms, maxLatency), r: 3, fill: "#d9822b" });
  });
  if (line.length) chart.add("polyline", { points: line.join(" "), fill: "none", stroke: "#d9822b", "stroke-width": 2 });
  chart.add("text", { x: 20, y: 10 }, `${maxCount} requests`);
  chart.add("text", { x: 580, y: 10, "text-anchor": "end", fill: "#d9822b" }, `p99 ${maxLatency.toFixed(1)} ms`);
  chart.add("text", { x: 20, y: 140 }, new Date(points[0].time).toLocaleTimeString());
  chart.add("text", { x: 580, y: 140, "text-anchor": "end" }, "now");
  return [summary, chart, el("small", {}, "Bars: requests per bucket (errors in red); line: p99 latency.")];
}

function accuracyRow(w, classifier) {
  const a = w.accuracy;
  const labeled = num(a.labeled_count);
  const label = el("span", { class: "bar-label" }, w.window);
  if (!labeled) return el("div", { class: "acc-row" }, label, el("span", { class: "muted" }, "no feedback yet"), el("span"));
  if (!classifier) {
    return el("div", { class: "acc-row", "data-window": w.window }, label,
      el("span", {}, `MAE ${a.mae.toFixed(3)} · RMSE ${a.rmse.toFixed(3)}`), el("span", { class: "bar-value" }, `${labeled} labeled`));
  }
  return el("div", { class: "acc-row", "data-window": w.window }, label,
    el("div", { class: "bar-track" }, el("div", { class: "bar", style: `width:${100 * a.accuracy}%` })),
    el("span", { class: "bar-value accuracy-value" }, `${pct(a.accuracy)} (${labeled})`));
}

function renderAccuracy(model, windows) {
  const classifier = windows.some((w) => Object.keys(w.outputs.label_shares || {}).length);
  const rows = windows.map((w) => accuracyRow(w, classifier));
  const first = windows[0].accuracy;
  const trend = (accuracyTrend[model] = accuracyTrend[model] || []);
  if (num(first.labeled_count)) trend.push(classifier ? first.accuracy : first.mae);
  if (trend.length > 60) trend.shift();
  if (trend.length < 2) return rows;
  const chart = svg(600, 60, "accuracy-trend");
  const lo = Math.min(...trend), hi = Math.max(...trend), span = hi - lo || 1;
  const pts = trend.map((v, i) => `${20 + (560 * i) / (trend.length - 1)},${50 - (40 * (v - lo)) / span}`);
  chart.add("polyline", { points: pts.join(" "), fill: "none", stroke: "#2f5d9d", "stroke-width": 2 });
  chart.add("text", { x: 580, y: 10, "text-anchor": "end" }, `${classifier ? "accuracy" : "MAE"} of ${windows[0].window}, since this page opened`);
  return [...rows, chart];
}

function renderFeature(f) {
  const tests = f.tests.map((t) => `${t.name} ${t.statistic.toFixed(3)}${t.p_value ? ` (p ${t.p_value.toExponential(1)})` : ""}`).join(" · ");
  const verdict = f.insufficient_data ? "too few rows" : f.drifted ? "drifted" : "stable";
  const chart = svg(280, 110);
  const bins = f.bins;
  const max = Math.max(...bins.map((b) => Math.max(b.reference_share, b.live_share)), 1e-9);
  const step = 260 / Math.max(bins.length, 1);
  bins.forEach((b, i) => {
    const x = 10 + i * step, w = Math.max(step / 2 - 1, 1);
    const h = (v) => (90 * v) / max;
    chart.add("rect", { x, y: 95 - h(b.reference_share), width: w, height: h(b.reference_share), class: "ref" })
      .append(Object.assign(document.createElementNS(SVG_NS, "title"), { textContent: `${b.label} reference ${pct(b.reference_share)}` }));
    chart.add("rect", { x: x + w, y: 95 - h(b.live_share), width: w, height: h(b.live_share), class: "live" })
      .append(Object.assign(document.createElementNS(SVG_NS, "title"), { textContent: `${b.label} live ${pct(b.live_share)}` }));
  });
  chart.add("line", { x1: 10, x2: 270, y1: 95, y2: 95, stroke: "#bcc3d1" });
  if (bins.length) {
    chart.add("text", { x: 10, y: 108 }, bins[0].label);
    chart.add("text", { x: 270, y: 108, "text-anchor": "end" }, bins[bins.length - 1].label);
  }
  return el("div", { class: "feature" + (f.drifted ? " drifted" : ""), "data-feature": f.feature },
    el("div", {}, el("strong", {}, f.feature), " ", el("span", { class: "verdict" }, verdict)), chart,
    el("small", {}, `${short(f.kind)} · ${tests || "no tests yet"}`));
}

async function refreshDashboard() {
  const model = $("model").value;
  if (!model) return;
  const name = encodeURIComponent(model);
  const picked = $("dash-window").value;
  const query = picked ? `?window=${encodeURIComponent(picked)}` : "";
  $("dash-model").textContent = model;
  try {
    const alerts = await call("GET", `/v1/alerts?model=${name}`);
    $("alerts").replaceChildren(...renderAlerts(alerts.firing));
    let metrics;
    try {
      metrics = await call("GET", `/v1/models/${name}/metrics`);
    } catch (error) {
      if (!String(error.message).startsWith("404")) throw error;
      $("dash-status").textContent = "No traffic seen for this model yet.";
      for (const id of ["traffic", "accuracy", "drift"]) $(id).replaceChildren();
      return;
    }
    const windows = metrics.windows;
    const select = $("dash-window");
    if (select.options.length !== windows.length) {
      select.replaceChildren(...windows.map((w) => el("option", { value: w.window }, w.window)));
      if (picked) select.value = picked;
    }
    const shown = windows.find((w) => w.window === select.value) || windows[0];
    $("traffic").replaceChildren(...renderTraffic(shown));
    $("accuracy").replaceChildren(...renderAccuracy(model, windows));
    const drift = await call("GET", `/v1/models/${name}/drift${query}`);
    $("drift").replaceChildren(...drift.features.map(renderFeature));
    $("dash-status").textContent = `Version ${metrics.version} · drift on ${num(drift.row_count)} live rows in ${drift.window} ` +
      `against ${num(drift.reference_count)} reference rows · updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("dash-status").textContent = `Monitoring unavailable: ${error.message || error}`;
  }
}

keepFresh(refreshDashboard, REFRESH_MS, "model", "dash-window");
