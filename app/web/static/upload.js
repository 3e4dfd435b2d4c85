// Upload page: stream the file to POST /v1/datasets, queue a job, go to its page; show 4xx messages inline.
(function () {
  "use strict";
  const form = document.getElementById("upload");
  const $ = (name) => document.getElementById(name);
  const drop = $("drop"), input = $("file");
  let file = null;

  function choose(chosen) {
    file = chosen || null;
    $("chosen").textContent = file ? file.name + " (" + file.size.toLocaleString("en") + " bytes)" : "";
    if (file && !$("name").value) $("name").placeholder = file.name;
  }
  function problem(text) { $("problem").textContent = text; $("problem").hidden = !text; }

  input.addEventListener("change", () => choose(input.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });
  $("format").addEventListener("change", () => {
    $("field-label").hidden = !["jsonl", "csv"].includes($("format").value);
  });

  async function post(url, options) {
    const response = await fetch(url, options);
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.detail || ("The server answered " + response.status));
    return answer;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    problem("");
    if (!file) { problem("Choose a file to upload first."); return; }
    let format = $("format").value;
    if (["jsonl", "csv"].includes(format)) format += ":" + $("field").value.trim();
    const query = new URLSearchParams({ name: $("name").value.trim() || file.name, format: format });
    $("submit").disabled = true;
    try {
      $("upload-status").textContent = "Uploading " + file.size.toLocaleString("en") + " bytes…";
      const dataset = await post("/v1/datasets?" + query, { method: "POST", body: file,
        headers: { "content-type": "application/octet-stream" } });
      $("upload-status").textContent = "Stored as " + dataset.id + "; queueing a job…";
      const job = await post("/v1/jobs", { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ dataset_id: dataset.id, preset: $("preset").value,
                               estimator: $("estimator").value, seeds: Number($("seeds").value) || 1,
                               families: $("families").value ? [$("families").value] : null }) });
      window.location.assign("/jobs/" + encodeURIComponent(job.id));
    } catch (error) {
      $("upload-status").textContent = "";
      problem(error.message);
    } finally {
      $("submit").disabled = false;
    }
  });
})();
