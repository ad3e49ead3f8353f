// The protoserve web page: pick a model, fill a form built from its card, see the prediction.
// Plain browser JavaScript against the gateway's own REST routes; nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { card: null, auth: false, pick: 0 };

function headers(json) {
  const h = json ? { "content-type": "application/json" } : {};
  const key = $("api-key").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) {
    const details = (data.details || []).map((d) => `${d.field}: ${d.description}`).join("; ");
    throw new Error(`${response.status} ${data.code || ""}: ${data.message || data.error}${details && !String(data.message).includes(details) ? " (" + details + ")" : ""}`);
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// Run refresh now, every ms and on each trigger element's change; never two at once (a change
// during a refresh runs it once more when that one ends, so the page never shows stale input).
function keepFresh(refresh, ms, ...triggers) {
  let busy = false, again = false;
  const tick = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do { again = false; await refresh(); } while (again);
    } finally { busy = false; }
  };
  for (const id of triggers) $(id).addEventListener("change", tick);
  setInterval(tick, ms);
  tick();
}

function showError(error) {
  $("result").replaceChildren(el("p", { class: "error", id: "error" }, String(error.message || error)));
}

async function loadModels() {
  const { models } = await call("GET", "/v1/models");
  const select = $("model");
  select.replaceChildren(...models.map((m) => el("option", { value: m.name }, m.name)));
  if (models.length) await pickModel(models[0].name);
}

// A pick marks the form busy until its card is shown; a pick overtaken by a newer one is dropped,
// so a slow answer never replaces the fields (or a result) the user has since filled in.
async function pickModel(name) {
  const pick = ++state.pick;
  const form = $("form");
  form.setAttribute("aria-busy", "true");
  $("predict").disabled = $("explain").disabled = true;
  try {
    const { card } = await call("GET", `/v1/models/${encodeURIComponent(name)}`);
    if (pick !== state.pick) return;
    state.card = card;
    $("model-description").textContent = `${card.description} (version ${card.version})`;
    const fields = card.inputs.map((input) => {
      const id = "input-" + input.name;
      return el("div", { class: "field" }, el("label", { for: id }, input.name), control(input, id),
        el("small", {}, input.description || (input.nullable ? "may be left empty" : "")));
    });
    $("fields").replaceChildren(...fields);
    $("result").replaceChildren();
    form.dataset.model = card.name;
  } finally {
    if (pick === state.pick) {
      form.removeAttribute("aria-busy");
      $("predict").disabled = $("explain").disabled = false;
    }
  }
}

// The control of one input, by its type: a select of the categories seen in training, a checkbox
// for a boolean, a text box for text, a number box (whole numbers for integers) otherwise.
function control(input, id) {
  const attrs = { id, name: input.name, "data-type": input.type };
  switch (input.type) {
    case "FEATURE_TYPE_CATEGORICAL": {
      const options = input.categories.map((c) => el("option", { value: c }, c));
      if (input.nullable) options.unshift(el("option", { value: "" }, "(missing)"));
      return el("select", attrs, ...options);
    }
    case "FEATURE_TYPE_BOOLEAN":
      return el("input", { ...attrs, type: "checkbox" });
    case "FEATURE_TYPE_STRING":
      return state.card.inputs.length === 1
        ? el("textarea", { ...attrs, ...(input.max_length ? { maxlength: String(input.max_length) } : {}) })
        : el("input", { ...attrs, type: "text" });
    case "FEATURE_TYPE_INTEGER":
      return el("input", { ...attrs, type: "number", step: "1" });
    default:
      return el("input", { ...attrs, type: "number", step: "any" });
  }
}

// A form value as JSON: an empty box is sent as null, and the service names every field that is wrong.
function valueOf(input, box) {
  if (input.type === "FEATURE_TYPE_BOOLEAN") return box.checked;
  if (input.type === "FEATURE_TYPE_STRING" || input.type === "FEATURE_TYPE_CATEGORICAL") {
    return box.value === "" && input.nullable ? null : box.value;
  }
  return box.value === "" ? null : Number(box.value);
}

function renderLabelOnly(c) {
  const scores = c.decision_scores || [];
  const text = scores.length ? ` (decision score${scores.length > 1 ? "s" : ""} ${scores.map((s) => s.toFixed(3)).join(", ")})` : "";
  return [el("p", { class: "headline", id: "headline" }, c.label + text),
    el("small", {}, "This model gives a label without probabilities.")];
}

function renderAnomaly(a) {
  return [el("p", { class: "headline", id: "headline" }, `${a.label} (score ${a.score.toFixed(3)})`),
    el("small", {}, "Scores below zero are outliers; the further below, the more unusual the row.")];
}

function renderCluster(c) {
  return [el("p", { class: "headline", id: "headline" }, `cluster ${c.label}`)];
}

function renderOutputs(r) {
  const rows = r.outputs.map((o) => el("div", { class: "output-row", "data-name": o.name },
    el("span", { class: "attr-name" }, o.name), el("span", { class: "attr-value" }, o.value.toFixed(4))));
  return [el("p", { class: "headline", id: "headline" }, r.outputs.map((o) => `${o.name} ${o.value.toFixed(2)}`).join(", ")), ...rows];
}

function renderPrediction(p) {
  if (p.classification) {
    return p.classification.probabilities.length ? renderClassification(p.classification) : renderLabelOnly(p.classification);
  }
  if (p.anomaly) return renderAnomaly(p.anomaly);
  if (p.cluster) return renderCluster(p.cluster);
  return p.regression.outputs && p.regression.outputs.length ? renderOutputs(p.regression) : renderRegression(p.regression);
}

function renderClassification(c) {
  const rows = c.probabilities.map((p) => {
    const pct = (100 * p.probability).toFixed(1);
    return el("div", { class: "bar-row" + (p.label === c.label ? " top" : ""), "data-label": p.label },
      el("span", { class: "bar-label" }, p.label),
      el("div", { class: "bar-track" }, el("div", { class: "bar", style: `width:${pct}%` })),
      el("span", { class: "bar-value" }, pct + "%"));
  });
  return [el("p", { class: "headline", id: "headline" }, `${c.label} (${(100 * c.score).toFixed(1)}%)`), ...rows];
}

function renderRegression(r) {
  const sd = r.standard_deviation;
  const lo = r.value - 2 * sd, hi = r.value + 2 * sd;
  const pad = Math.max(sd, Math.abs(r.value) * 0.05, 1e-9) * 3;
  const min = lo - pad, max = hi + pad;
  const x = (v) => 20 + (560 * (v - min)) / (max - min);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 600 70");
  svg.setAttribute("id", "band");
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  add("line", { x1: 20, x2: 580, y1: 40, y2: 40, stroke: "#bcc3d1" });
  add("rect", { x: x(lo), y: 28, width: Math.max(x(hi) - x(lo), 1), height: 24, fill: "#8aa6cf", opacity: 0.6 });
  add("line", { x1: x(r.value), x2: x(r.value), y1: 22, y2: 58, stroke: "#2f5d9d", "stroke-width": 3 });
  add("text", { x: x(lo), y: 68, "text-anchor": "middle" }, lo.toFixed(1));
  add("text", { x: x(hi), y: 68, "text-anchor": "middle" }, hi.toFixed(1));
  add("text", { x: x(r.value), y: 16, "text-anchor": "middle" }, r.value.toFixed(1));
  return [el("p", { class: "headline", id: "headline" }, `mean ${r.value.toFixed(2)} ± ${(2 * sd).toFixed(2)} (2σ)`),
    svg, el("small", {}, "The band is mean ± 2 standard deviations of the predictive distribution.")];
}

function formRow() {
  const row = {};
  for (const input of state.card.inputs) row[input.name] = valueOf(input, $("input-" + input.name));
  return row;
}

function renderExplanation(e) {
  const attrs = e.attributions;
  const scale = Math.max(...attrs.map((a) => Math.abs(a.value)), 1e-12);
  const rows = attrs.map((a) => {
    const pct = (50 * Math.abs(a.value)) / scale;
    return el("div", { class: "attr-row", "data-name": a.name },
      el("span", { class: "attr-name" }, a.name),
      el("div", { class: "attr-track" }, el("div", { class: "attr-bar " + (a.value >= 0 ? "up" : "down"), style: `width:${pct}%` })),
      el("span", { class: "attr-value" }, (a.value >= 0 ? "+" : "") + a.value.toFixed(3)));
  });
  const target = e.label ? `'${e.label}'` : "the prediction";
  return [el("p", { class: "headline", id: "explanation" },
    `Why ${target}: ${e.base_value.toFixed(3)} on average → ${e.output_value.toFixed(3)} here`), ...rows,
    el("small", {}, "Green pushes towards the answer, red away from it (SHAP values).")];
}

async function explain() {
  $("explain").disabled = true;
  try {
    const data = await call("POST", `/v1/models/${encodeURIComponent(state.card.name)}:explain`, { rows: [formRow()], top_k: 12 });
    const space = String(data.output_space || "").replace("OUTPUT_SPACE_", "").toLowerCase().replace(/_/g, " ");
    $("result").replaceChildren(...renderExplanation(data.explanations[0]),
      el("small", {}, `${data.model} version ${data.version}; values in ${space || "model output"} space`));
  } catch (error) {
    showError(error);
  } finally {
    $("explain").disabled = false;
  }
}

async function predict(event) {
  event.preventDefault();
  const row = formRow();
  $("predict").disabled = true;
  try {
    const data = await call("POST", `/v1/models/${encodeURIComponent(state.card.name)}:predict`, { rows: [row] });
    const p = data.predictions[0];
    const parts = renderPrediction(p);
    $("result").replaceChildren(...parts, el("small", {}, `${data.model} version ${data.version}`));
  } catch (error) {
    showError(error);
  } finally {
    $("predict").disabled = false;
  }
}

async function start() {
  $("api-key").value = localStorage.getItem("protoserve-key") || "";
  $("api-key").addEventListener("change", () => { localStorage.setItem("protoserve-key", $("api-key").value.trim()); loadModels().catch(showError); });
  const config = await call("GET", "/config.json");
  $("key-box").hidden = !config.auth;
  $("model").addEventListener("change", () => pickModel($("model").value).catch(showError));
  $("form").addEventListener("submit", predict);
  $("explain").addEventListener("click", explain);
  await loadModels();
}

start().catch(showError);
