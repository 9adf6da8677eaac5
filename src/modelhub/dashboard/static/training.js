// modelhub dashboard, training tab: a run's page follows the run live over its
// Server-Sent Events feed (/training/runs/{id}/events): progress, status, ETA, log lines
// and curve points. When the run ends, its figures and actions are fetched once more.
"use strict";

(() => {
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  const RECONNECT_MS = 5000; // never poll faster than every 5 s
  const LOG_KEEP_CHARS = 200000;
  const CURVES = ["loss-curve", "accuracy-curve"];

  const byId = (id) => document.getElementById(id);
  const setText = (id, text) => {
    const el = byId(id);
    if (el) el.textContent = text;
  };

  function duration(seconds) {
    if (seconds == null || seconds < 0) return "–";
    if (seconds < 60) return seconds < 10 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds)} s`;
    const total = Math.round(seconds);
    const minutes = Math.floor(total / 60);
    const secs = total % 60;
    if (minutes < 60) return secs ? `${minutes} min ${secs} s` : `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    const mins = minutes % 60;
    return mins ? `${hours} h ${mins} min` : `${hours} h`;
  }

  function count(value) {
    return window.modelhub ? window.modelhub.formatNumber(value) : String(value);
  }

  function showPercent(progress) {
    const bar = byId("run-progress");
    if (bar) {
      bar.value = progress;
      bar.textContent = `${Math.floor(progress)} %`;
    }
    setText("run-percent", `${Math.floor(progress)} %`);
  }

  function showProgress(data) {
    if (data.progress != null) showPercent(data.progress);
    if (data.step != null) setText("run-step", count(data.step));
    if (data.total_steps != null) setText("run-total-steps", count(data.total_steps));
    if (data.epoch != null) setText("run-epoch", String(data.epoch));
    if (data.eta_seconds != null) setText("run-eta", duration(data.eta_seconds));
  }

  function showStatus(status) {
    const badge = byId("run-status");
    if (!badge) return;
    badge.textContent = status;
    badge.className = `badge ${status}`;
    if (status === "completed") {
      showPercent(100);
      setText("run-eta", duration(0));
    }
  }

  function appendLog(text) {
    const log = byId("run-log");
    if (!log || !text) return;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    let shown = log.textContent + text;
    if (shown.length > LOG_KEEP_CHARS) shown = shown.slice(shown.length - LOG_KEEP_CHARS);
    log.textContent = shown;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  // Points of one metrics event on one curve: one x (step) each, in order; a step the
  // chart already ends at gets its missing values filled in; older steps were seen.
  function addPoints(figureId, points) {
    const figure = byId(figureId);
    const el = figure && figure.querySelector(".plot");
    if (!el || !window.modelhub) return;
    if (!el.uplot_chart) window.modelhub.drawCharts(figure);
    const chart = el.uplot_chart;
    if (!chart) return;
    const labels = chart.series.slice(1).map((s) => s.label);
    const steps = new Map();
    points.forEach((p) => {
      const at = labels.indexOf(p.name);
      if (at < 0 || p.value == null || !Number.isFinite(p.value)) return;
      if (!steps.has(p.step)) steps.set(p.step, labels.map(() => null));
      steps.get(p.step)[at] = p.value;
    });
    [...steps.keys()].sort((a, b) => a - b).forEach((step) => {
      const ys = steps.get(step);
      const xs = chart.data[0];
      const last = xs.length ? xs[xs.length - 1] : null;
      if (last === null || step > last) {
        window.modelhub.appendPoints(el, step, ys);
      } else if (step === last) {
        const columns = chart.data.map((column) => Array.from(column));
        ys.forEach((y, i) => {
          if (y != null) columns[i + 1][columns[0].length - 1] = y;
        });
        chart.setData(columns);
      }
    });
  }

  function parse(text) {
    try {
      // Python's JSON writes a metric that is not finite as NaN or Infinity.
      return JSON.parse(text.replace(/\b(?:NaN|-?Infinity)\b/g, "null"));
    } catch (_) {
      return null;
    }
  }

  function refreshFigures(view) {
    fetch(`/training/runs/${view.dataset.runId}`, { headers: { "HX-Request": "true" } })
      .then((answer) => (answer.ok ? answer.text() : null))
      .then((html) => {
        if (!html) return;
        const template = document.createElement("template");
        template.innerHTML = html.trim();
        const fresh = template.content.querySelector("#run-live");
        const live = byId("run-live");
        if (fresh && live) live.replaceWith(fresh);
      })
      .catch(() => {});
  }

  function follow(view) {
    let after = Number(view.dataset.feedAfter || 0);
    let logOffset = Number(view.dataset.logOffset || 0);
    let ended = false;
    let source = null;

    const end = () => {
      ended = true;
      if (source) source.close();
      view.dataset.final = "true";
      refreshFigures(view);
    };

    const connect = () => {
      const url = `/training/runs/${view.dataset.runId}/events?after=${after}&log_offset=${logOffset}`;
      source = new EventSource(url);
      const track = (event) => {
        if (event.lastEventId) after = Number(event.lastEventId);
      };
      source.addEventListener("log", (event) => {
        const data = parse(event.data);
        if (!data) return;
        appendLog(data.text);
        logOffset = data.offset;
      });
      source.addEventListener("progress", (event) => {
        track(event);
        const message = parse(event.data);
        if (message) showProgress(message.data);
      });
      source.addEventListener("metrics", (event) => {
        track(event);
        const message = parse(event.data);
        if (!message) return;
        CURVES.forEach((id) => addPoints(id, message.data.points || []));
      });
      source.addEventListener("status", (event) => {
        track(event);
        const message = parse(event.data);
        if (!message) return;
        showStatus(message.data.status);
        if (FINAL.has(message.data.status)) end();
      });
      ["checkpoint", "alert", "preprocessing"].forEach((kind) => source.addEventListener(kind, track));
      source.addEventListener("error", (event) => {
        if (event.data) {
          // The server said why the stream stopped (the usual error body): show it, stop.
          const body = parse(event.data);
          setText("run-eta", body && body.message ? body.message : "the live view stopped");
          ended = true;
          source.close();
          return;
        }
        // The connection dropped: reconnect from where the page got to, after a pause.
        source.close();
        if (!ended) setTimeout(connect, RECONNECT_MS);
      });
    };
    connect();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const view = byId("run-view");
    if (view && view.dataset.final !== "true" && window.EventSource) follow(view);
  });
})();
