// Job page: follow the job's server-sent events; when it ends, reload to show its result.
(function () {
  "use strict";
  const box = document.getElementById("job");
  if (!box) return;
  const id = box.dataset.job;
  const terminal = ["succeeded", "failed", "canceled"];
  const $ = (name) => document.getElementById(name);

  function show(state) {
    if ($("status")) { $("status").textContent = state.status; $("status").className = "status " + state.status; }
    if ($("progress")) { $("progress").value = state.progress; $("percent").textContent = Math.round(state.progress * 100) + "%"; }
    if ($("message")) $("message").textContent = state.message || "";
    if ($("cancel")) $("cancel").hidden = !["queued", "running"].includes(state.status);
  }

  function problem(text) {
    const p = $("action-problem");
    if (!p) return;
    p.textContent = text;
    p.hidden = !text;
  }

  if (!terminal.includes(box.dataset.status)) {
    const events = new EventSource("/v1/jobs/" + encodeURIComponent(id) + "/events");
    events.addEventListener("progress", (e) => show(JSON.parse(e.data)));
    for (const status of [...terminal, "deleted"]) {
      events.addEventListener(status, () => { events.close(); window.location.reload(); });
    }
    events.onerror = () => { if (events.readyState === EventSource.CLOSED) problem("Lost the live progress stream; reload the page."); };
  }

  async function send(url, body) {
    problem("");
    // Always JSON: the server refuses state changes in types a foreign page could send (415).
    const response = await fetch(url, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) { problem(answer.detail || ("The server answered " + response.status)); return null; }
    return answer;
  }

  const cancel = $("cancel");
  if (cancel) cancel.addEventListener("click", async () => {
    if (await send("/v1/jobs/" + encodeURIComponent(id) + "/cancel")) window.location.reload();
  });
  const retry = $("retry");
  if (retry) retry.addEventListener("click", async () => {
    const job = await send("/v1/jobs", JSON.parse(box.dataset.retry));
    if (job) window.location.assign("/jobs/" + encodeURIComponent(job.id));
  });
})();
