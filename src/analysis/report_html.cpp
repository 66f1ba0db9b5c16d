// index.html of tune-report: one self-contained page (no network access) that renders the
// embedded report JSON with plain JS: summary table, loss curve, tuning fractions, and one
// searchable, sortable card per component (top examples, coefficient histogram, tunings).
#include <nlohmann/json.hpp>

#include <string>

#include "npeff/analysis/report.h"

namespace npeff::analysis {
namespace {

const char* const kTemplate = R"NPEFF(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>npeff tune-report</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eee}.plots{display:flex;flex-wrap:wrap;gap:1.5em}.plot{background:#fff;border:1px solid #ddd;padding:.5em}
#controls{position:sticky;top:0;background:#fafafa;padding:.5em 0;border-bottom:1px solid #ddd;z-index:1}
#controls input[type=search]{width:22em;padding:.3em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em;margin-top:1em}
.card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.7em}
.card h3{margin:0 0 .3em;font-size:1.05em}.badge{display:inline-block;border-radius:3px;padding:0 .4em;margin-right:.3em;font-size:.8em;color:#fff}
.b-pred{background:#1f77b4}.b-label{background:#2ca02c}.b-lnp{background:#d62728}.b-excl{background:#888}
.meta{font-size:.85em;color:#555;margin:.2em 0 .4em}.prompt{white-space:pre-wrap;max-width:40em}
#shown{margin-left:1em;color:#555}
.hidden{display:none}
</style></head>
<body>
<h1 id="title">npeff tune-report</h1>
<div id="subtitle" class="meta"></div>
<noscript>This report is rendered by JavaScript; the same content is in report.json.</noscript>
<h2>Summary</h2><table id="summary"></table>
<div class="plots"><div class="plot" id="loss-plot"></div><div class="plot" id="tuning-plot"></div></div>
<h2>Components</h2>
<div id="controls">
<input type="search" id="search" placeholder="Search prompts, labels, predictions, component ids">
<label>Sort by <select id="sort">
<option value="id">component id</option><option value="nonzero">non-zero examples</option>
<option value="max">largest coefficient</option><option value="tuned">tuned first</option></select></label>
<label><input type="checkbox" id="only-pred"> prediction-tuned</label>
<label><input type="checkbox" id="only-lnp"> LnP</label>
<span id="shown"></span></div>
<div class="cards" id="cards"></div>
<script type="application/json" id="report-data">__NPEFF_REPORT_JSON__</script>
<script>
"use strict";
const R = JSON.parse(document.getElementById("report-data").textContent);
const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function pct(x) { return x === null || x === undefined ? "n/a" : (100 * x).toFixed(1) + "%"; }
function fmt(x) { return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toPrecision(4) : x.toExponential(3); }

document.getElementById("title").textContent = "npeff tune-report: " + R.name;
document.getElementById("subtitle").textContent =
  R.decomposition + " (" + R.method + "), " + R.examples + " examples, top " + R.top_k +
  " examples per component, npeff " + R.npeff_version;
const S = R.summary;
const rows = [["components", S.components], ["included (>= top-k non-zero examples)", S.included],
  ["excluded (fewer)", S.excluded], ["prediction-tuned", S.prediction_tuned + " (" + pct(S.prediction_fraction) + ")"],
  ["label-tuned", S.has_labels ? S.label_tuned + " (" + pct(S.label_fraction) + ")" : "n/a (no labels)"],
  ["LnP (label- but not prediction-tuned)", S.has_labels ? S.lnp + " (" + pct(S.lnp_fraction) + ")" : "n/a"],
  ["model accuracy on these examples", pct(R.model_accuracy)]];
if (R.token_decoding) rows.push(["vocabulary tokens", (R.token_decoding.tokenizer ?
  "decoded with " + R.token_decoding.tokenizer : "not decoded") +
  (R.token_decoding.note ? "; " + R.token_decoding.note : "")]);
if (R.icl) rows.push(["ICL-style classifier (" + R.icl.tuned_components + " components tuned to a label at >= " +
  pct(R.icl.label_fraction) + ")", "accuracy " + pct(R.icl.accuracy) + ", agreement with the model " + pct(R.icl.agreement_with_model)]);
const st = document.getElementById("summary");
for (const [k, v] of rows) { const tr = el("tr"); tr.appendChild(el("th", {}, k)); tr.appendChild(el("td", {}, String(v))); st.appendChild(tr); }

function linePlot(parent, title, xs, ys, logY) {
  const W = 420, H = 240, L = 60, B = 30, T = 25, Rm = 10;
  const s = svg("svg", {width: W, height: H, "class": "line-plot"});
  s.appendChild(svg("text", {x: W / 2, y: 15, "text-anchor": "middle", "font-size": 13}, title));
  if (!xs.length) { s.appendChild(svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, "no data")); parent.appendChild(s); return; }
  const f = logY ? (v => Math.log10(Math.max(v, 1e-300))) : (v => v);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys.map(f)), y1 = Math.max(...ys.map(f));
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) y1 = y0 + 1;
  const px = v => L + (v - x0) / (x1 - x0) * (W - L - Rm), py = v => H - B - (f(v) - y0) / (y1 - y0) * (H - T - B);
  s.appendChild(svg("polyline", {fill: "none", stroke: "#1f77b4", "stroke-width": 2,
    points: xs.map((x, i) => px(x) + "," + py(ys[i])).join(" ")}));
  s.appendChild(svg("line", {x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#000"}));
  s.appendChild(svg("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#000"}));
  const lab = v => logY ? fmt(Math.pow(10, v)) : fmt(v);
  s.appendChild(svg("text", {x: L - 4, y: T + 4, "text-anchor": "end", "font-size": 10}, lab(y1)));
  s.appendChild(svg("text", {x: L - 4, y: H - B, "text-anchor": "end", "font-size": 10}, lab(y0)));
  s.appendChild(svg("text", {x: L, y: H - 8, "font-size": 10}, String(x0)));
  s.appendChild(svg("text", {x: W - Rm, y: H - 8, "text-anchor": "end", "font-size": 10}, String(x1)));
  parent.appendChild(s);
}
linePlot(document.getElementById("loss-plot"), "loss (eq. 4) by step", R.loss.step, R.loss.value, true);

function barPlot(parent, title, names, values) {
  const W = 420, H = 240, L = 40, B = 40, T = 25, bw = (W - L - 10) / names.length;
  const s = svg("svg", {width: W, height: H, "class": "bar-plot"});
  s.appendChild(svg("text", {x: W / 2, y: 15, "text-anchor": "middle", "font-size": 13}, title));
  names.forEach((n, i) => {
    const v = values[i] === null ? 0 : values[i], h = v * (H - T - B);
    s.appendChild(svg("rect", {x: L + i * bw + 8, y: H - B - h, width: bw - 16, height: h, fill: ["#1f77b4", "#2ca02c", "#d62728"][i % 3]}));
    s.appendChild(svg("text", {x: L + i * bw + bw / 2, y: H - B + 14, "text-anchor": "middle", "font-size": 11}, n));
    s.appendChild(svg("text", {x: L + i * bw + bw / 2, y: H - B - h - 4, "text-anchor": "middle", "font-size": 11}, pct(values[i])));
  });
  s.appendChild(svg("line", {x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: "#000"}));
  parent.appendChild(s);
}
barPlot(document.getElementById("tuning-plot"), "tuned components (of " + S.included + " included)",
  ["prediction", "label", "LnP"], [S.prediction_fraction, S.label_fraction, S.lnp_fraction]);

function histogram(h) {
  const W = 220, H = 70, n = h.counts.length, top = Math.max(1, ...h.counts);
  const s = svg("svg", {width: W, height: H + 14, "class": "histogram"});
  h.counts.forEach((c, i) => {
    const bh = c / top * H;
    s.appendChild(svg("rect", {x: i * W / n, y: H - bh, width: W / n - 1, height: bh, fill: "#888"}));
  });
  s.appendChild(svg("text", {x: 0, y: H + 12, "font-size": 10}, "0"));
  s.appendChild(svg("text", {x: W, y: H + 12, "font-size": 10, "text-anchor": "end"}, fmt(h.max)));
  return s;
}
const cards = document.getElementById("cards");
for (const c of R.components) {
  const card = el("section", {"class": "card", id: "component-" + c.id});
  const h = el("h3", {}, "Component " + c.id + " ");
  if (!c.included) h.appendChild(el("span", {"class": "badge b-excl"}, "fewer than " + R.top_k + " examples"));
  if (c.prediction_tuned) h.appendChild(el("span", {"class": "badge b-pred"}, "prediction-tuned: " + c.majority_prediction));
  if (c.label_tuned) h.appendChild(el("span", {"class": "badge b-label"}, "label-tuned: " + c.majority_label));
  if (c.lnp) h.appendChild(el("span", {"class": "badge b-lnp"}, "LnP"));
  card.appendChild(h);
  card.appendChild(el("div", {"class": "meta"}, c.nonzero + " non-zero examples; top predictions " +
    c.majority_prediction + " (" + pct(c.majority_prediction_fraction) + "), top labels " + c.majority_label +
    " (" + pct(c.majority_label_fraction) + ")"));
  card.appendChild(histogram(c.histogram));
  const t = el("table", {"class": "top"});
  const hr = el("tr");
  for (const k of ["#", "coef", "label", "pred", "prompt"]) hr.appendChild(el("th", {}, k));
  t.appendChild(hr);
  c.top.forEach((e, i) => {
    const tr = el("tr");
    tr.appendChild(el("td", {}, String(i + 1)));
    tr.appendChild(el("td", {}, fmt(e.coefficient)));
    tr.appendChild(el("td", {}, e.label));
    tr.appendChild(el("td", {}, e.prediction));
    tr.appendChild(el("td", {"class": "prompt", title: "example " + e.example_id}, e.prompt));
    t.appendChild(tr);
  });
  card.appendChild(t);
  card.dataset.id = c.id; card.dataset.nonzero = c.nonzero;
  card.dataset.max = c.top.length ? c.top[0].coefficient : 0;
  card.dataset.tuned = (c.lnp ? 4 : 0) + (c.label_tuned ? 2 : 0) + (c.prediction_tuned ? 1 : 0);
  card.dataset.pred = c.prediction_tuned ? 1 : 0; card.dataset.lnp = c.lnp ? 1 : 0;
  card.dataset.text = card.textContent.toLowerCase();
  cards.appendChild(card);
}
function update() {
  const q = document.getElementById("search").value.toLowerCase().trim();
  const onlyPred = document.getElementById("only-pred").checked, onlyLnp = document.getElementById("only-lnp").checked;
  const key = document.getElementById("sort").value;
  const all = Array.from(cards.children);
  all.sort((a, b) => key === "id" ? a.dataset.id - b.dataset.id : (b.dataset[key] - a.dataset[key]) || (a.dataset.id - b.dataset.id));
  let shown = 0;
  for (const c of all) {
    const ok = (!q || c.dataset.text.includes(q)) && (!onlyPred || c.dataset.pred === "1") && (!onlyLnp || c.dataset.lnp === "1");
    c.classList.toggle("hidden", !ok); shown += ok; cards.appendChild(c);
  }
  document.getElementById("shown").textContent = shown + " of " + all.length + " components shown";
}
for (const id of ["search", "sort", "only-pred", "only-lnp"]) document.getElementById(id).addEventListener("input", update);
update();
</script>
</body></html>
)NPEFF";

}  // namespace

std::string render_report_html(const nlohmann::json& report) {
  // "</" inside a <script> element would end it early; "<\/" is the same JSON string.
  std::string data = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (size_t p = data.find("</"); p != std::string::npos; p = data.find("</", p + 3))
    data.replace(p, 2, "<\\/");
  std::string html = kTemplate;
  const std::string marker = "__NPEFF_REPORT_JSON__";
  html.replace(html.find(marker), marker.size(), data);
  return html;
}

}  // namespace npeff::analysis
