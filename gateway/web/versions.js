// The versions of the selected model (ModelService.ListVersions, admin scope): each version's state,
// whether it is the default, its traffic share and shadow role, its held-out metrics and, where the
// card records one, the training run that made it. Uses call/el/$ from app.js.
"use strict";

const VERSIONS_REFRESH_MS = 5000;
const enumName = (v, prefix) => String(v || "").replace(prefix, "").toLowerCase().replace(/_/g, " ");
const fixed = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v));

function renderMetrics(metrics) {
  const names = Object.keys(metrics || {}).sort();
  if (!names.length) return el("span", { class: "muted" }, "none");
  return el("span", {}, names.map((n) => `${n} ${fixed(metrics[n])}`).join(" · "));
}

function renderRun(run) {
  if (!run) return el("span", { class: "muted" }, "built outside a training run");
  const data = run.data || {};
  const sources = Object.entries(data.rows_by_source || {}).map(([s, n]) => `${s} ${n}`).join(", ");
  const params = Object.entries(run.parameters || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
  const p = run.promotion || {};
  const decision = p.metric
    ? `${p.promoted ? "promoted" : "not promoted"} (${enumName(p.mode, "PROMOTION_MODE_")}): ${p.metric} ` +
      `${fixed(p.challenger_score)} vs champion${p.champion_version ? " v" + p.champion_version : ""} ` +
      `${fixed(p.champion_score)}, margin ${fixed(p.margin)}${p.reason ? " — " + p.reason : ""}`
    : (p.reason || "no decision recorded");
  return el("dl", { class: "run" },
    el("dt", {}, "recipe"), el("dd", { class: "run-recipe" }, run.recipe || "?"),
    el("dt", {}, "parameters"), el("dd", { class: "run-parameters" }, params || "defaults"),
    el("dt", {}, "data"), el("dd", { class: "run-data" },
      `${data.train_rows || 0} train / ${data.test_rows || 0} held-out rows${sources ? " (" + sources + ")" : ""}` +
      `${data.sha256 ? " · sha256 " + data.sha256.slice(0, 12) : ""}`),
    el("dt", {}, "duration"), el("dd", { class: "run-duration" }, `${fixed(run.duration_seconds || 0)} s`),
    el("dt", {}, "promotion"), el("dd", { class: "run-promotion" }, decision));
}

function renderVersion(v) {
  const roles = [v.is_default ? "default" : "", v.shadow ? "shadow" : ""].filter(Boolean).join(", ");
  return el("tr", { class: "version", "data-version": v.version },
    el("td", {}, el("strong", {}, v.version)),
    el("td", { class: "v-state" }, enumName(v.state, "VERSION_STATE_") + (v.error ? `: ${v.error}` : "")),
    el("td", { class: "v-role" }, roles || "—"),
    el("td", { class: "v-traffic" }, pct(v.traffic_share || 0)),
    el("td", { class: "v-metrics" }, renderMetrics(v.metrics)),
    el("td", { class: "v-run" }, renderRun(v.training_run)));
}

async function refreshVersions() {
  const model = $("model").value;
  if (!model) return;
  $("versions-model").textContent = model;
  try {
    const listing = await call("GET", `/v1/models/${encodeURIComponent(model)}/versions`);
    const head = el("tr", {}, ...["version", "state", "role", "traffic", "metrics", "training run"].map((h) => el("th", {}, h)));
    $("versions").replaceChildren(el("table", { id: "versions-table" }, el("thead", {}, head),
      el("tbody", {}, ...listing.versions.map(renderVersion))));
    const policy = listing.policy.latest ? `latest ${listing.policy.latest.count}`
      : listing.policy.specific ? `versions ${listing.policy.specific.versions.join(", ")}` : "all versions";
    const split = listing.routes.length ? listing.routes.map((r) => `v${r.version} ${r.weight}`).join(" / ") : "all to the default";
    $("versions-status").textContent = `Default v${listing.default_version || "?"} · traffic ${split}` +
      `${listing.shadow_version ? " · shadow v" + listing.shadow_version : ""} · keeps ${policy} loaded`;
  } catch (error) {
    const denied = /^40[13]/.test(String(error.message));
    $("versions").replaceChildren();
    $("versions-status").textContent = denied
      ? `Versions need a key with the admin scope (${error.message}).`
      : `Versions unavailable: ${error.message || error}`;
  }
}

keepFresh(refreshVersions, VERSIONS_REFRESH_MS, "model", "api-key");
