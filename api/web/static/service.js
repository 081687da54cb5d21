/* The service page: copy buttons for the examples, and live quality figures from GET /api/services/{id}. */
(function () {
  "use strict";

  const S = window.Server402;
  const RESET_MS = 2000;

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (error) {
        /* permission refused: fall back to a hidden textarea below */
      }
    }
    const area = S.el("textarea", { className: "visually-hidden", attrs: { readonly: "", "aria-hidden": "true" } });
    area.value = text;
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied;
  }

  function setupCopy(button) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const label = button.textContent;
    button.addEventListener("click", async () => {
      const copied = await copyText(source.textContent);
      button.textContent = copied ? "Copied" : "Press Ctrl+C";
      button.classList.toggle("copied", copied);
      if (!copied) window.getSelection().selectAllChildren(source);
      setTimeout(() => {
        button.textContent = label;
        button.classList.remove("copied");
      }, RESET_MS);
    });
  }

  function fact(term, value, badgeClass) {
    const content = badgeClass ? S.el("span", { className: badgeClass, text: value }) : String(value);
    return S.el("div", {}, [S.el("dt", { text: term }), S.el("dd", {}, [content])]);
  }

  function renderQuality(quality) {
    const health = quality.healthStatus || "unknown";
    const rows = [
      fact("Health", health, "badge health-" + S.healthClass(health)),
      fact("Quality score", S.formatScore(quality.qualityScore)),
      fact("Success rate", S.formatPercent(quality.successRate)),
      fact("Calls", S.formatCount(quality.callCount)),
      fact("Executions", S.formatCount(quality.executionCount)),
      fact("Succeeded", S.formatCount(quality.successCount)),
      fact("Errors", S.formatCount(quality.errorCount)),
      fact("402 answers", S.formatCount(quality.paymentRequireds)),
      fact("Health latency", S.formatMs(quality.healthLatencyMs)),
      fact("Health checked", S.formatTime(quality.healthCheckedAt)),
      fact("Last call", S.formatTime(quality.lastCallAt)),
    ];
    document.getElementById("quality").replaceChildren(...rows);
  }

  async function loadQuality(serviceId) {
    const status = document.getElementById("quality-status");
    try {
      const answer = await S.fetchJson("/api/services/" + encodeURIComponent(serviceId));
      if (!answer.ok || !answer.body || !answer.body.quality) {
        status.textContent = "Live figures are unavailable (HTTP " + answer.status + ").";
        return;
      }
      renderQuality(answer.body.quality);
      status.textContent = "As of " + new Date().toLocaleTimeString() + ".";
    } catch (error) {
      status.textContent = "Live figures are unavailable right now.";
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(setupCopy);
  const service = document.getElementById("service");
  if (service) loadQuality(service.dataset.serviceId);
})();
