// modelhub dashboard: htmx settings, errors beside their form, and charts (uPlot).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Error answers (4xx, 5xx) carry a fragment saying what went wrong: swap it in too.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    // A 4xx is an answer the page shows (a refused form), not a fault to log; 5xx is.
    { code: "4..", swap: true, error: false },
    { code: "5..", swap: true, error: true },
  ];
  drawCharts(document);
});

// An error fragment goes to the [data-errors] box of the form that sent the request (or
// the one its hx-target names), not over the form itself.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if (status < 400) return;
  const source = event.detail.requestConfig && event.detail.requestConfig.elt;
  const form = source && (source.closest("form") || source);
  const box = form && form.querySelector("[data-errors]");
  if (box) {
    box.innerHTML = event.detail.serverResponse;
    event.detail.shouldSwap = false;
  } else {
    // Not from a form (a fragment loading on its own): say so above the page's content.
    const flash = document.getElementById("flash");
    if (flash) flash.innerHTML = event.detail.serverResponse;
    event.detail.shouldSwap = false;
  }
});

document.addEventListener("htmx:afterSwap", (event) => drawCharts(event.detail.elt));

const palette = () => {
  const style = getComputedStyle(document.documentElement);
  return [1, 2, 3, 4].map((i) => style.getPropertyValue(`--chart-${i}`).trim());
};

// Every .plot[data-chart] under `root` becomes a uPlot chart; the element keeps its
// chart in `.uplot_chart` so live views can append points (see appendPoints).
function drawCharts(root) {
  if (!window.uPlot) return;
  root.querySelectorAll(".plot[data-chart]").forEach((el) => {
    if (el.uplot_chart) return;
    const data = JSON.parse(el.dataset.chart);
    el.uplot_chart = makeChart(el, data, el.dataset.unit || "");
  });
}

function makeChart(el, data, unit) {
  const colours = palette();
  const series = [{}].concat(
    data.series.map((s, i) => ({
      label: s.label,
      stroke: colours[i % colours.length],
      width: 2,
      spanGaps: true,
      value: (u, v) => (v == null ? "–" : `${formatNumber(v)}${unit ? " " + unit : ""}`),
    })),
  );
  const width = Math.max(el.clientWidth || 600, 260);
  const ink = getComputedStyle(el).color;
  const xAxis = { stroke: ink, grid: { stroke: "rgba(128,128,128,0.2)" } };
  // Steps and cycles are whole numbers: no tick between two of them.
  if (data.time === false) {
    xAxis.incrs = [0, 1, 2, 3, 4, 5, 6, 7, 8].flatMap((e) => [1, 2, 5].map((m) => m * 10 ** e));
  }
  const options = {
    width,
    height: 220,
    series,
    axes: [xAxis, { stroke: ink, grid: { stroke: "rgba(128,128,128,0.2)" } }],
    // One point alone would stretch the axis over years: give it a minute each side on a
    // time axis, one unit (a step, a cycle) each side otherwise.
    scales: {
      x: {
        time: data.time !== false,
        range: (u, min, max) => {
          const pad = data.time !== false ? 60 : 1;
          return min === max ? [min - pad, max + pad] : [min, max];
        },
      },
    },
  };
  const columns = [data.x].concat(data.series.map((s) => s.values));
  const chart = new uPlot(options, columns, el);
  new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth, 260), height: 220 })).observe(el);
  return chart;
}

// Add points to a live chart: `x` one value, `ys` one value per series.
function appendPoints(el, x, ys) {
  const chart = el.uplot_chart;
  if (!chart) return;
  const columns = chart.data.map((column) => Array.from(column));
  columns[0].push(x);
  ys.forEach((y, i) => columns[i + 1].push(y));
  chart.setData(columns);
}

function formatNumber(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "B";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "K";
  if (a >= 100) return v.toFixed(0);
  return Number(v.toPrecision(3)).toString();
}

window.modelhub = { drawCharts, appendPoints, formatNumber };
