/* The catalog page: search as you type through GET /api/catalog/search and render the matches. */
(function () {
  "use strict";

  const S = window.Server402;
  const LIMIT = 100;
  const DEBOUNCE_MS = 200;
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const category = document.getElementById("category");
  const summary = document.getElementById("search-summary");
  const results = document.getElementById("results");
  const template = document.getElementById("card-template");
  let timer = null;
  let inFlight = null;

  function searchUrl(query, chosen) {
    const params = new URLSearchParams({ q: query, limit: String(LIMIT) });
    if (chosen) params.set("category", chosen);
    return "/api/catalog/search?" + params.toString();
  }

  function pageUrl(query, chosen) {
    const params = new URLSearchParams();
    if (query) params.set("q", query);
    if (chosen) params.set("category", chosen);
    const text = params.toString();
    return text ? "/?" + text : "/";
  }

  function qualityText(quality) {
    if (!quality || (!quality.callCount && !quality.healthCheckedAt)) return "no data yet";
    const parts = [S.formatScore(quality.qualityScore)];
    if (quality.successRate !== null && quality.successRate !== undefined) {
      parts.push(S.formatPercent(quality.successRate) + " ok");
    }
    parts.push(S.formatCount(quality.callCount) + " calls");
    return parts.join(" · ");
  }

  function card(service) {
    const node = template.content.firstElementChild.cloneNode(true);
    const health = (service.quality && service.quality.healthStatus) || "unknown";
    const link = node.querySelector(".card-link");
    link.href = "/services/" + encodeURIComponent(service.id);
    node.querySelector(".card-name").textContent = service.name;
    node.querySelector(".card-name-zh").textContent = service.nameZh;
    node.querySelector(".card-description").textContent = service.description;
    node.querySelector(".card-category").textContent = service.category;
    node.querySelector(".card-price").textContent = S.formatPrice(service.pricing);
    const badge = node.querySelector(".card-health");
    badge.textContent = health;
    badge.classList.add("health-" + S.healthClass(health));
    node.querySelector(".card-quality").textContent = qualityText(service.quality);
    const why = node.querySelector(".card-why");
    why.textContent = service.why || "";
    why.title = service.why || "";
    node.dataset.serviceId = service.id;
    return node;
  }

  function describe(body, query) {
    const shown = body.services.length;
    if (!query) return shown + " services";
    if (!shown) return "No service matches “" + query + "”. Try other words, in English or Chinese.";
    const total = body.total > shown ? " of " + body.total : "";
    return shown + total + (shown === 1 ? " service matches " : " services match ") + "“" + query + "”";
  }

  async function search() {
    const query = input.value.trim();
    const chosen = category.value;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    history.replaceState(null, "", pageUrl(query, chosen));
    summary.textContent = "Searching…";
    try {
      const answer = await S.fetchJson(searchUrl(query, chosen), { signal: inFlight.signal });
      if (!answer.ok) {
        summary.textContent = (answer.body && answer.body.error) || "Search failed (HTTP " + answer.status + ").";
        return;
      }
      results.replaceChildren(...answer.body.services.map(card));
      summary.textContent = describe(answer.body, query);
      results.setAttribute("aria-busy", "false");
    } catch (error) {
      if (error.name !== "AbortError") summary.textContent = "Search is unavailable right now; try again shortly.";
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(search, DEBOUNCE_MS);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search();
  });
  input.addEventListener("input", schedule);
  category.addEventListener("change", search);
  search();
})();
