/* server402 pages: shared formatting and DOM helpers. Text goes in with textContent, never as HTML. */
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const HEALTH = {
    healthy: "healthy", ok: "healthy", up: "healthy", passing: "healthy",
    degraded: "degraded", slow: "degraded", warning: "degraded",
    unhealthy: "unhealthy", down: "unhealthy", failing: "unhealthy", error: "unhealthy", failed: "unhealthy",
  };

  function el(tag, options, children) {
    const node = document.createElement(tag);
    applyOptions(node, options || {});
    (children || []).forEach((child) => node.append(child));
    return node;
  }

  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG_NS, tag);
    Object.entries(attrs || {}).forEach(([name, value]) => node.setAttribute(name, String(value)));
    (children || []).forEach((child) => node.append(child));
    return node;
  }

  function applyOptions(node, options) {
    if (options.className) node.className = options.className;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    Object.entries(options.attrs || {}).forEach(([name, value]) => node.setAttribute(name, String(value)));
  }

  function healthClass(status) {
    return HEALTH[String(status || "").toLowerCase()] || "unknown";
  }

  /* qualityScore is 0..5 (shared/quality.py). */
  function formatScore(score) {
    return score === null || score === undefined ? "–" : Number(score).toFixed(1) + " / 5";
  }

  /* successRate is a fraction (0..1); a value above 1 is taken as a percentage already. */
  function percent(rate) {
    if (rate === null || rate === undefined || Number.isNaN(Number(rate))) return null;
    const value = Number(rate);
    return value > 1 ? value : value * 100;
  }

  function formatPercent(rate) {
    const value = percent(rate);
    if (value === null) return "–";
    return (value >= 99.95 || value === 0 ? value.toFixed(0) : value.toFixed(1)) + "%";
  }

  function formatMs(ms) {
    if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "–";
    const value = Number(ms);
    return value >= 10000 ? (value / 1000).toFixed(1) + " s" : Math.round(value) + " ms";
  }

  function formatPrice(pricing) {
    if (!pricing || !pricing.amountCents) return "Free";
    const amount = pricing.amountCents / 100;
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: pricing.currency }).format(amount) + " / call";
    } catch (error) {
      return pricing.currency + " " + amount.toFixed(2) + " / call";
    }
  }

  function formatTime(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  function formatShortTime(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const sameDay = date.toDateString() === new Date().toDateString();
    const options = sameDay ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
      : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    return date.toLocaleString(undefined, options);
  }

  function formatCount(value) {
    return value === null || value === undefined ? "–" : Number(value).toLocaleString("en");
  }

  async function fetchJson(url, options) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, ...(options || {}) });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    return { ok: response.ok, status: response.status, body };
  }

  window.Server402 = Object.freeze({
    el, svg, healthClass, formatScore, percent, formatPercent, formatMs, formatPrice, formatTime, formatShortTime, formatCount,
    fetchJson,
  });
})();
