/* The status dashboard: GET /api/status every few seconds, drawn as tiles, SVG bar charts and sparklines. */
(function () {
  "use strict";

  const S = window.Server402;
  const root = document.getElementById("status-root");
  const message = document.getElementById("status-message");
  const body = document.getElementById("status-body");
  const REFRESH_MS = Number(root.dataset.refreshMs) || 10000;
  const CHART = { width: 640, height: 220, left: 58, right: 8, top: 10, bottom: 22 };
  const SPARK = { width: 120, height: 28, pad: 3 };
  let loadedOnce = false;

  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    const step = [1, 2, 2.5, 5, 10].find((s) => s * power >= value);
    return step * power;
  }

  function latencyOf(service) {
    const value = service.latencyMs ?? service.healthLatencyMs;
    return value === null || value === undefined ? null : Number(value);
  }

  function gridLines(max, format) {
    const plotHeight = CHART.height - CHART.top - CHART.bottom;
    const nodes = [];
    for (let i = 0; i <= 4; i += 1) {
      const y = CHART.top + plotHeight - (plotHeight * i) / 4;
      const x2 = CHART.width - CHART.right;
      nodes.push(S.svg("line", { x1: CHART.left, x2, y1: y, y2: y, class: i ? "chart-grid" : "chart-axis" }));
      const label = S.svg("text", { x: CHART.left - 6, y: y + 4, "text-anchor": "end", class: "chart-label" });
      label.textContent = format((max * i) / 4);
      nodes.push(label);
    }
    return nodes;
  }

  /* items: [{label, value (number or null), health}]; value null draws an empty slot. */
  function barChart(items, max, format, title) {
    const plotWidth = CHART.width - CHART.left - CHART.right;
    const plotHeight = CHART.height - CHART.top - CHART.bottom;
    const band = plotWidth / Math.max(items.length, 1);
    const chart = S.svg("svg", {
      viewBox: `0 0 ${CHART.width} ${CHART.height}`, width: CHART.width, height: CHART.height, role: "img",
      "aria-label": title, class: "bar-chart",
    }, gridLines(max, format));
    items.forEach((item, index) => {
      const known = item.value !== null;
      const height = known ? Math.max(1, (Math.min(item.value, max) / max) * plotHeight) : plotHeight;
      const bar = S.svg("rect", {
        x: (CHART.left + index * band + band * 0.15).toFixed(2), width: Math.max(1, band * 0.7).toFixed(2),
        y: (CHART.top + plotHeight - height).toFixed(2), height: height.toFixed(2), rx: 2,
        class: known ? "bar-" + S.healthClass(item.health) : "bar-empty",
      });
      const tip = S.svg("title");
      tip.textContent = item.label + ": " + (known ? format(item.value) : "no data");
      bar.append(tip);
      chart.append(bar);
    });
    if (items.every((item) => item.value === null)) {
      const empty = S.svg("text", { x: CHART.left + plotWidth / 2, y: CHART.top + plotHeight / 2, "text-anchor": "middle", class: "chart-empty" });
      empty.textContent = "No data yet";
      chart.append(empty);
    }
    const caption = S.svg("text", { x: CHART.left, y: CHART.height - 6, class: "chart-label" });
    caption.textContent = items.length + " services, in catalog order (hover a bar for its name)";
    chart.append(caption);
    return chart;
  }

  function sparkline(history) {
    const points = (history || []).filter((h) => h.latencyMs !== null && h.latencyMs !== undefined);
    const chart = S.svg("svg", {
      viewBox: `0 0 ${SPARK.width} ${SPARK.height}`, width: SPARK.width, height: SPARK.height, class: "sparkline",
      role: "img", "aria-label": points.length ? `latency of the last ${points.length} checks` : "no history yet",
    });
    if (points.length === 0) {
      const none = S.svg("text", { x: 0, y: SPARK.height - 9, class: "chart-label" });
      none.textContent = "no history yet";
      chart.append(none);
      return chart;
    }
    const max = Math.max(...points.map((p) => Number(p.latencyMs)), 1);
    const step = points.length > 1 ? (SPARK.width - 2 * SPARK.pad) / (points.length - 1) : 0;
    const xy = points.map((p, i) => [
      SPARK.pad + i * step,
      SPARK.height - SPARK.pad - (Number(p.latencyMs) / max) * (SPARK.height - 2 * SPARK.pad),
    ]);
    chart.append(S.svg("polyline", { points: xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "), class: "spark-line" }));
    points.forEach((p, i) => {
      const health = S.healthClass(p.status);
      if (health === "healthy" && i !== points.length - 1) return;
      const dot = S.svg("circle", { cx: xy[i][0].toFixed(1), cy: xy[i][1].toFixed(1), r: 2.5, class: "dot-" + health });
      const tip = S.svg("title");
      tip.textContent = `${S.formatTime(p.at)}: ${p.status}, ${S.formatMs(p.latencyMs)}`;
      dot.append(tip);
      chart.append(dot);
    });
    return chart;
  }

  function meter(rate, health) {
    const value = S.percent(rate);
    const track = S.svg("svg", { viewBox: "0 0 80 8", width: 80, height: 8, "aria-hidden": "true" }, [
      S.svg("rect", { x: 0, y: 0, width: 80, height: 8, rx: 4, class: "bar-empty" }),
    ]);
    if (value !== null) {
      const width = Math.max(value > 0 ? 2 : 0, (Math.min(value, 100) / 100) * 80);
      track.append(S.svg("rect", { x: 0, y: 0, width: width.toFixed(1), height: 8, rx: 4, class: "bar-" + S.healthClass(health) }));
    }
    return S.el("div", { className: "meter" }, [track, S.el("span", { text: S.formatPercent(rate) })]);
  }

  function row(service) {
    const health = service.healthStatus || "unknown";
    const name = S.el("a", { text: service.name || service.id, attrs: { href: "/services/" + encodeURIComponent(service.id) } });
    const cells = [
      S.el("th", { attrs: { scope: "row" } }, [name]),
      S.el("td", {}, [S.el("span", { className: "badge health-" + S.healthClass(health), text: health })]),
      S.el("td", {}, [meter(service.successRate, health)]),
      S.el("td", { className: "num", text: S.formatCount(service.callCount) }),
      S.el("td", { className: "num", text: S.formatCount(service.errorCount) }),
      S.el("td", { className: "num", text: S.formatMs(latencyOf(service)) }),
      S.el("td", {}, [sparkline(service.history)]),
      S.el("td", { className: "nowrap", text: S.formatShortTime(service.lastCallAt) }),
    ];
    return S.el("tr", { attrs: { "data-service-id": service.id } }, cells);
  }

  function tile(id, text, good) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.classList.toggle("good", good === true);
    node.classList.toggle("bad", good === false);
  }

  function workerText(worker) {
    if (!worker) return ["–", undefined];
    return worker.alive ? [S.formatCount(worker.count) + " alive", true] : ["none alive", false];
  }

  function renderTiles(data) {
    const services = data.services;
    const healthy = services.filter((s) => S.healthClass(s.healthStatus) === "healthy").length;
    const executions = services.reduce((sum, s) => sum + (Number(s.executionCount) || 0), 0);
    const successes = services.reduce((sum, s) => sum + (Number(s.successCount) || 0), 0);
    const unhealthy = services.some((s) => S.healthClass(s.healthStatus) === "unhealthy");
    const verdict = unhealthy ? false : services.length && healthy === services.length ? true : undefined;
    tile("tile-healthy", `${healthy} / ${services.length}`, verdict);
    tile("tile-success", executions ? S.formatPercent(successes / executions) : "–");
    tile("tile-calls", S.formatCount(services.reduce((sum, s) => sum + (Number(s.callCount) || 0), 0)));
    tile("tile-invocation", ...workerText(data.workers && data.workers.invocation));
    tile("tile-health", ...workerText(data.workers && data.workers.health));
  }

  function renderCharts(services) {
    const success = services.map((s) => ({ label: s.name || s.id, value: S.percent(s.successRate), health: s.healthStatus }));
    const latency = services.map((s) => ({ label: s.name || s.id, value: latencyOf(s), health: s.healthStatus }));
    const maxLatency = niceCeiling(Math.max(100, ...latency.filter((l) => l.value !== null).map((l) => l.value)));
    document.getElementById("chart-success").replaceChildren(
      barChart(success, 100, (v) => Math.round(v) + "%", "Success rate by service"));
    document.getElementById("chart-latency").replaceChildren(
      barChart(latency, maxLatency, (v) => S.formatMs(v), "Latency by service in milliseconds"));
  }

  function render(data) {
    const services = Array.isArray(data.services) ? data.services : [];
    renderTiles({ ...data, services });
    renderCharts(services);
    document.getElementById("status-rows").replaceChildren(...services.map(row));
    const generated = document.getElementById("status-generated");
    generated.textContent = S.formatTime(data.generatedAt);
    generated.setAttribute("datetime", data.generatedAt || "");
  }

  function unavailable(reason) {
    message.className = loadedOnce ? "notice" : "error";
    message.textContent = loadedOnce
      ? `Status unavailable (${reason}); showing the last figures. Retrying every ${REFRESH_MS / 1000} s.`
      : `Status unavailable (${reason}). The dashboard retries every ${REFRESH_MS / 1000} s.`;
    root.dataset.state = "unavailable";
  }

  async function load() {
    try {
      const answer = await S.fetchJson("/api/status", { cache: "no-store" });
      if (!answer.ok || !answer.body || !Array.isArray(answer.body.services)) {
        unavailable(answer.ok ? "unexpected answer" : "HTTP " + answer.status);
      } else {
        render(answer.body);
        loadedOnce = true;
        body.hidden = false;
        message.className = "summary";
        message.textContent = `${answer.body.services.length} services · updated ${new Date().toLocaleTimeString()}`;
        root.dataset.state = "ready";
      }
    } catch (error) {
      unavailable("network error");
    }
    setTimeout(load, REFRESH_MS);
  }

  load();
})();
