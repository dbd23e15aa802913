// kf2v-mock console. Reads only the admin API (/_mock/...). Every value shown is user input
// (prompts, URLs, headers): it goes into the page as text (textContent / text nodes), never as
// markup. No framework, no build step, nothing from the network.
"use strict";

const POLL_MS = 1000;
const TOKEN_KEY = "kf2v-mock-admin-token";
const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"];
const ENDPOINTS = ["create", "query", "list", "cancel", "get_policy", "upload", "download"];
const $ = (id) => document.getElementById(id);

// --- DOM helpers: text only ----------------------------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else if (key === "title" || key === "href" || key === "type" || key === "value") node[key] = value;
    else node.dataset[key] = value;
  }
  for (const child of children) append(node, child);
  return node;
}
function append(node, child) {
  if (child === null || child === undefined) return;
  if (child instanceof Node) node.appendChild(child);
  else node.appendChild(document.createTextNode(String(child)));
}
function text(id, value) { $(id).textContent = value === null || value === undefined ? "" : String(value); }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function json(value) { return JSON.stringify(value, null, 2); }
function taskLink(id) { return "#/task/" + encodeURIComponent(id); }

// --- the admin API -----------------------------------------------------------------------------------
class AdminError extends Error {
  constructor(status, body) { super((body && body.message) || ("HTTP " + status)); this.status = status; this.body = body; }
}
function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { "X-Mock-Admin-Token": token } : {};
}
async function api(method, path, body) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => null);
  if (response.status === 403 && answer && answer.code === "AccessDenied") { askForToken(); }
  if (!response.ok) throw new AdminError(response.status, answer);
  return answer;
}
async function blobUrl(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}
function askForToken() {
  $("token-form").hidden = false;
  $("token-input").focus();
}
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
  $("token-form").hidden = true;
  text("token-error", "");
  start();
});

// --- time ------------------------------------------------------------------------------------------
let now = null;  // the virtual clock's reading at the last poll (Date)
function serviceTime(value) {  // "YYYY-MM-DD HH:mm:ss.SSS" in UTC+8, as DashScope writes it
  return value ? new Date(value.replace(" ", "T") + "+08:00") : null;
}
function left(until) {
  if (!until || !now) return "";
  const seconds = (until - now) / 1000;
  if (seconds <= 0) return "expired";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}
function shortTime(iso) { return iso ? iso.replace("T", " ").replace(/\+00:00$/, "Z") : ""; }

// --- the clock ---------------------------------------------------------------------------------------
async function refreshClock() {
  const clock = await api("GET", "/_mock/clock");
  now = new Date(clock.now);
  text("clock-now", shortTime(clock.now));
  const state = $("clock-state");
  state.textContent = clock.frozen ? "frozen" : "running";
  state.className = "badge " + (clock.frozen ? "frozen" : "running-clock");
  $("freeze").textContent = clock.frozen ? "unfreeze" : "freeze";
  $("freeze").dataset.frozen = clock.frozen ? "1" : "";
}
async function clockChange(body) {
  text("clock-error", "");
  try { await api("POST", "/_mock/clock", body); } catch (error) { text("clock-error", error.message); }
  await refresh();
}
for (const button of document.querySelectorAll("[data-advance]")) {
  button.addEventListener("click", () => clockChange({ advance_seconds: Number(button.dataset.advance) }));
}
$("advance-go").addEventListener("click", () => {
  const seconds = Number($("advance-custom").value);
  if ($("advance-custom").value === "" || !(seconds >= 0)) { text("clock-error", "give a number of seconds >= 0"); return; }
  clockChange({ advance_seconds: seconds });
});
$("freeze").addEventListener("click", () => clockChange({ frozen: !$("freeze").dataset.frozen }));
$("reset").addEventListener("click", () => { $("reset-confirm").hidden = false; });
$("reset-no").addEventListener("click", () => { $("reset-confirm").hidden = true; });
$("reset-yes").addEventListener("click", async () => {
  $("reset-confirm").hidden = true;
  try { await api("POST", "/_mock/reset"); } catch (error) { text("clock-error", error.message); }
  location.hash = "#/tasks";
  await refresh();
});

// --- tasks -------------------------------------------------------------------------------------------
const seenModels = new Set();
function fillSelect(select, values) {
  for (const value of values) {
    if (![...select.options].some((o) => o.value === value)) select.appendChild(el("option", { value }, value));
  }
}
function timelineBar(task) {
  const submit = serviceTime(task.submit_time), start = serviceTime(task.scheduled_time);
  const end = serviceTime(task.end_time), canceled = serviceTime(task.canceled_time);
  const last = Math.max(end || 0, canceled || 0, Math.min(now || 0, (submit.getTime() + 60e3)));
  const span = Math.max(last - submit, 1);
  const pos = (t) => Math.min(100, Math.max(0, ((t - submit) / span) * 100)) + "%";
  const bar = el("div", { class: "bar", title: "submit " + task.submit_time + " / start " + (task.scheduled_time || "-") + " / end " + (task.end_time || task.canceled_time || "-") });
  const queue = el("span", { class: "queue" });
  queue.style.left = "0%";
  queue.style.width = pos(start || canceled || now || submit);
  bar.appendChild(queue);
  if (start) {
    const run = el("span", { class: "run " + task.status });
    run.style.left = pos(start);
    run.style.width = "calc(" + pos(end || now) + " - " + pos(start) + ")";
    bar.appendChild(run);
  }
  if (now && now - submit <= span) {
    const marker = el("span", { class: "now" });
    marker.style.left = pos(now);
    bar.appendChild(marker);
  }
  return bar;
}
function statusBadge(status, extra) { return el("span", { class: "badge " + status }, status + (extra || "")); }
function taskRow(task) {
  const failure = task.failure ? task.failure.code : "";
  const row = el("tr", { class: "clickable" + (task.forgotten ? " forgotten" : ""), taskId: task.task_id, status: task.status },
    el("td", {}, el("a", { href: taskLink(task.task_id) }, task.task_id.slice(0, 8) + "…")),
    el("td", {}, task.region),
    el("td", {}, task.api_key_id + " / " + task.account_id),
    el("td", {}, task.spec_model || task.model),
    el("td", { class: "status" }, statusBadge(task.status, task.forgotten ? " (forgotten)" : "")),
    el("td", {}, timelineBar(task)),
    el("td", { class: "error" }, failure),
    el("td", { class: "task-expires" }, left(serviceTime(task.expires_time))),
    el("td", { class: "link-expires" }, task.link_expires_time ? left(serviceTime(task.link_expires_time)) : ""),
    el("td", { class: "prompt", title: task.prompt || "" }, task.prompt || ""));
  row.addEventListener("click", (event) => { if (event.target.tagName !== "A") location.hash = taskLink(task.task_id); });
  return row;
}
async function refreshTasks() {
  const query = new URLSearchParams();
  for (const [name, id] of [["status", "f-status"], ["region", "f-region"], ["model", "f-model"]]) {
    if ($(id).value) query.set(name, $(id).value);
  }
  const answer = await api("GET", "/_mock/tasks?" + query);
  const tasks = [...answer.tasks, ...answer.forgotten].reverse();  // newest first
  for (const task of tasks) seenModels.add(task.model);
  fillSelect($("f-model"), [...seenModels].sort());
  const body = $("tasks").tBodies[0];
  clear(body);
  for (const task of tasks) body.appendChild(taskRow(task));
  $("tasks-empty").hidden = tasks.length > 0;
  text("task-count", tasks.length + " task(s)");
}
for (const id of ["f-status", "f-region", "f-model"]) $(id).addEventListener("change", () => refresh());

// --- one task -------------------------------------------------------------------------------------
let shownTask = null;  // {id, media: {first, last, video}} for the task on screen
function definitions(target, pairs) {
  clear(target);
  for (const [name, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    target.appendChild(el("dt", {}, name));
    target.appendChild(el("dd", {}, typeof value === "object" ? json(value) : value));
  }
}
function journalRow(entry, withTask) {
  const cells = [
    el("td", {}, shortTime(entry.time)), el("td", {}, entry.method),
    el("td", {}, entry.path + (entry.query ? "?" + entry.query : "")),
    el("td", {}, entry.status === null ? "dropped" : entry.status), el("td", {}, entry.code || ""),
    el("td", {}, entry.latency_ms)];
  if (withTask) {
    cells.push(el("td", {}, entry.task_id ? el("a", { href: taskLink(entry.task_id) }, entry.task_id.slice(0, 8) + "…") : ""));
    cells.push(el("td", {}, (entry.faults || []).join(", ")));
  }
  cells.push(el("td", { class: "reason" }, entry.reason || ""));
  const row = el("tr", { class: "clickable" + (entry.reason ? " has-reason" : ""), requestId: entry.request_id }, ...cells);
  row.addEventListener("click", (event) => {
    if (event.target.tagName !== "A") location.hash = "#/request/" + encodeURIComponent(entry.request_id);
  });
  return row;
}
async function loadMedia(taskId, detail) {
  const media = shownTask.media;
  for (const which of ["first", "last"]) {
    if (!media[which] && detail.frames[which]) {
      media[which] = true;
      const url = await blobUrl("/_mock/tasks/" + encodeURIComponent(taskId) + "/frames/" + which);
      if (url && shownTask && shownTask.id === taskId) { $("t-" + which).src = url; $("t-" + which).hidden = false; }
    }
    $("t-" + which + "-none").hidden = detail.frames[which];
    if (!detail.frames[which]) $("t-" + which).hidden = true;
  }
  if (!media.video && detail.video) {
    media.video = true;
    const url = await blobUrl("/_mock/tasks/" + encodeURIComponent(taskId) + "/video");
    if (url && shownTask && shownTask.id === taskId) {
      const video = $("t-video");
      video.src = url;
      video.hidden = false;
      $("t-video-none").hidden = true;
    }
  }
}
async function refreshTask(taskId) {
  if (!shownTask || shownTask.id !== taskId) {
    shownTask = { id: taskId, media: {} };
    for (const id of ["t-first", "t-last"]) { $(id).removeAttribute("src"); $(id).hidden = true; }
    const video = $("t-video");
    video.removeAttribute("src"); video.load(); video.hidden = true;
    $("t-video-none").hidden = false;
  }
  text("t-id", taskId);
  let detail;
  try {
    detail = await api("GET", "/_mock/tasks/" + encodeURIComponent(taskId));
  } catch (error) {
    $("t-missing").hidden = false;
    text("t-missing", error.message);
    return;
  }
  $("t-missing").hidden = true;
  const task = detail.task;
  const badge = $("t-status");
  badge.textContent = task.status + (task.forgotten ? " (forgotten)" : "");
  badge.className = "badge " + task.status;
  const input = detail.request.input, params = detail.request.parameters;
  definitions($("t-request"), [
    ["model", detail.request.model], ["prompt", input.prompt], ["actual prompt", detail.actual_prompt],
    ["negative prompt", input.negative_prompt], ["template", input.template],
    ["first_frame_url", input.first_frame_url], ["last_frame_url", input.last_frame_url],
    ["parameters", params], ["key id / account", task.api_key_id + " / " + task.account_id],
    ["region", task.region], ["request id", task.request_id]]);
  definitions($("t-timeline"), [
    ["submitted", task.submit_time], ["starts / started", task.scheduled_time],
    ["ends / ended", task.end_time], ["canceled", task.canceled_time],
    ["queue wait", task.queue_wait_seconds + " s"], ["run time", task.run_seconds + " s"],
    ["output", task.width + "x" + task.height], ["error", task.failure],
    ["task expires", task.expires_time + " (" + left(serviceTime(task.expires_time)) + ")"],
    ["link expires", task.link_expires_time ? task.link_expires_time + " (" + left(serviceTime(task.link_expires_time)) + ")" : null]]);
  text("t-answer", json(detail.answer));
  const body = $("t-requests").tBodies[0];
  clear(body);
  for (const entry of detail.requests.slice().reverse()) body.appendChild(journalRow(entry, false));
  await loadMedia(taskId, detail);
}

// --- the journal -----------------------------------------------------------------------------------
fillSelect($("j-endpoint"), ENDPOINTS);
async function refreshJournal() {
  const query = new URLSearchParams({ order: "desc", limit: "200", brief: "1" });
  if ($("j-path").value) query.set("path_prefix", $("j-path").value);
  if ($("j-status").value) query.set("status", $("j-status").value.trim());
  if ($("j-code").value) query.set("code", $("j-code").value.trim());
  if ($("j-endpoint").value) query.set("endpoint", $("j-endpoint").value);
  if ($("j-reason").checked) query.set("reason", "*");
  const answer = await api("GET", "/_mock/requests?" + query);
  const body = $("journal").tBodies[0];
  clear(body);
  for (const entry of answer.requests) body.appendChild(journalRow(entry, true));
}
for (const id of ["j-path", "j-status", "j-code"]) $(id).addEventListener("input", () => refresh());
for (const id of ["j-endpoint", "j-reason"]) $(id).addEventListener("change", () => refresh());
$("j-clear").addEventListener("click", async () => { await api("DELETE", "/_mock/requests"); await refresh(); });

async function showRequest(requestId) {
  text("r-id", requestId);
  let entry;
  try { entry = await api("GET", "/_mock/requests/" + encodeURIComponent(requestId)); } catch (error) {
    text("r-reason", error.message); return;
  }
  text("r-reason", entry.reason ? "Reason: " + entry.reason : "No reason recorded (nothing refused or injected).");
  definitions($("r-summary"), [
    ["time (virtual)", shortTime(entry.time)], ["request", entry.method + " " + entry.path + (entry.query ? "?" + entry.query : "")],
    ["status", entry.status === null ? "connection dropped" : entry.status], ["code", entry.code],
    ["latency", entry.latency_ms + " ms"], ["endpoint", entry.endpoint], ["region", entry.region],
    ["key id", entry.api_key_id], ["task", entry.task_id], ["faults / scenarios", (entry.faults || []).join(", ")],
    ["quota", entry.quota], ["peer", entry.remote]]);
  text("r-req-headers", json(entry.request_headers));
  text("r-req-body", typeof entry.request_body === "string" ? entry.request_body : json(entry.request_body));
  text("r-resp-headers", json(entry.response_headers));
  text("r-resp-body", typeof entry.response_body === "string" ? entry.response_body : json(entry.response_body));
}

// --- fault rules and scenarios --------------------------------------------------------------------
let presets = [];
fillSelect($("fault-endpoint"), ENDPOINTS);
async function loadPresets() {
  if (presets.length) return;
  presets = (await api("GET", "/_mock/faults/presets")).presets;
  const select = $("fault-preset");
  clear(select);
  presets.forEach((preset, index) => select.appendChild(el("option", { value: String(index) }, preset.name)));
  describePreset();
}
function describePreset() {
  const preset = presets[Number($("fault-preset").value)];
  text("fault-description", preset ? preset.description + "  —  " + JSON.stringify(preset.rule) : "");
}
$("fault-preset").addEventListener("change", describePreset);
$("fault-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  text("fault-error", "");
  const preset = presets[Number($("fault-preset").value)];
  if (!preset) return;
  const rule = JSON.parse(JSON.stringify(preset.rule));
  if ($("fault-endpoint").value) rule.match = Object.assign({}, rule.match, { endpoint: $("fault-endpoint").value });
  if ($("fault-times").value) rule.times = Number($("fault-times").value);
  if ($("fault-probability").value) rule.probability = Number($("fault-probability").value);
  try { await api("POST", "/_mock/faults", rule); } catch (error) { text("fault-error", error.message); }
  await refresh();
});
$("fault-clear").addEventListener("click", async () => { await api("DELETE", "/_mock/faults"); await refresh(); });
function actionOf(rule) {
  for (const kind of ["error", "task_failure", "delay", "disconnect", "truncate", "expire_url"]) {
    if (kind in rule) return kind + " " + JSON.stringify(rule[kind]);
  }
  return "";
}
async function refreshFaults() {
  await loadPresets();
  const rules = (await api("GET", "/_mock/faults")).faults;
  const body = $("faults").tBodies[0];
  clear(body);
  for (const rule of rules) {
    const remove = el("button", { type: "button" }, "delete");
    remove.addEventListener("click", async () => { await api("DELETE", "/_mock/faults/" + encodeURIComponent(rule.id)); await refresh(); });
    body.appendChild(el("tr", { ruleId: rule.id },
      el("td", {}, rule.id), el("td", {}, rule.source), el("td", {}, JSON.stringify(rule.match)),
      el("td", {}, actionOf(rule)), el("td", {}, rule.probability), el("td", {}, rule.times === null ? "∞" : rule.times),
      el("td", { class: "applied" }, rule.applied), el("td", {}, rule.remaining === null ? "∞" : rule.remaining),
      el("td", {}, rule.draws), el("td", {}, rule.active ? "yes" : "no"), el("td", {}, remove)));
  }
}
async function refreshScenarios() {
  const answer = await api("GET", "/_mock/scenarios");
  text("scenarios-enabled", answer.enabled ? "" : "(switched off with --no-scenarios)");
  const body = $("scenarios").tBodies[0];
  if (body.rows.length) return;
  for (const scenario of answer.scenarios) {
    body.appendChild(el("tr", {}, el("td", {}, el("code", {}, scenario.name)), el("td", {}, scenario.applies_to), el("td", {}, scenario.description)));
  }
}

// --- the client report card (and the chaos run's schedule) -------------------------------------------
const SEVERITY_COUNTS = [["errors", "error"], ["warnings", "warning"], ["infos", "info"]];
const EVIDENCE_SHOWN_APART = ["task_ids", "request_ids", "requests", "requests_omitted"];
const seenKeys = new Set(), seenAccounts = new Set();
const openEvidence = new Set();  // findings whose requests the user opened
let shownCard = null;  // the last card drawn, without its generated_at (nothing redrawn if unchanged)
function requestLink(id) {
  return el("a", { href: "#/request/" + encodeURIComponent(id), title: id, class: "request-link" }, id.slice(0, 8) + "…");
}
function evidenceTaskLink(id) {
  return el("a", { href: taskLink(id), title: id, class: "task-link" }, id);
}
function severityBadge(severity) { return el("span", { class: "badge sev-" + severity }, severity); }
function plural(count, word) { return count + " " + word + (count === 1 ? "" : "s"); }
function count(value, severity) { return el("td", { class: value ? "count sev-text-" + severity : "count" }, value); }
function clientRow(client) {
  return el("tr", { keyId: client.key_id || "" },
    el("td", {}, client.key_id || "(no key)"), el("td", {}, client.account_id || "-"),
    el("td", {}, client.regions.join(", ") || "-"), el("td", {}, client.requests), el("td", {}, client.tasks),
    ...SEVERITY_COUNTS.map(([name, severity]) => count(client[name], severity)),
    el("td", {}, client.rules.join(", ")));
}
function evidenceRequests(requests) {
  const table = el("table", { class: "journal evidence" },
    el("thead", {}, el("tr", {}, ...["time (virtual)", "request", "endpoint", "status", "code", "task status", "task", "faults"].map((h) => el("th", {}, h)))));
  const body = el("tbody", {});
  for (const entry of requests) {
    body.appendChild(el("tr", { requestId: entry.request_id },
      el("td", {}, shortTime(entry.time)), el("td", {}, requestLink(entry.request_id)), el("td", {}, entry.endpoint || ""),
      el("td", {}, entry.status === null ? "dropped" : String(entry.status) + (entry.truncated ? " (cut off)" : "")),
      el("td", {}, (entry.code || "") + (entry.retry_after !== undefined ? " (Retry-After " + entry.retry_after + " s)" : "")),
      el("td", {}, entry.task_status || ""),
      el("td", {}, entry.task_id ? el("a", { href: taskLink(entry.task_id), title: entry.task_id }, entry.task_id.slice(0, 8) + "…") : ""),
      el("td", {}, (entry.faults || []).join(", "))));
  }
  table.appendChild(body);
  return table;
}
function findingBox(finding) {
  const evidence = finding.evidence || {};
  const taskIds = evidence.task_ids || [];
  const details = Object.entries(evidence).filter(([name]) => !EVIDENCE_SHOWN_APART.includes(name));
  const box = el("article", { class: "finding sev-" + finding.severity, rule: finding.rule, severity: finding.severity },
    el("h4", {}, severityBadge(finding.severity), " ", el("code", { class: "rule" }, finding.rule), " ",
      el("span", { class: "title" }, finding.title)),
    el("p", { class: "summary" }, finding.summary),
    el("p", { class: "who muted" }, "key " + (finding.key_id || "(none)") + " / account " + (finding.account_id || "-") +
      " · " + (finding.region || "-") + " · from " + shortTime(finding.time)),
    el("dl", { class: "why-fix" },
      el("dt", {}, "why it matters"), el("dd", { class: "why" }, finding.why),
      el("dt", {}, "how to fix"), el("dd", { class: "fix" }, finding.fix)));
  const facts = el("dl", { class: "evidence-facts" });
  if (taskIds.length) {
    const links = el("dd", { class: "tasks" });
    taskIds.forEach((id, i) => { if (i) links.appendChild(document.createTextNode(", ")); links.appendChild(evidenceTaskLink(id)); });
    facts.appendChild(el("dt", {}, "task" + (taskIds.length === 1 ? "" : "s")));
    facts.appendChild(links);
  }
  for (const [name, value] of details) {
    facts.appendChild(el("dt", {}, name.replace(/_/g, " ")));
    facts.appendChild(el("dd", {}, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)));
  }
  const requests = evidence.requests || [];
  const omitted = evidence.requests_omitted || 0;
  box.appendChild(facts);
  if (requests.length) {
    // Closed at first; a redraw (the card changed) keeps the ones the user opened open.
    const key = finding.rule + " " + finding.time + " " + (finding.key_id || "") + " " + taskIds.join(",");
    const shown = el("details", { class: "evidence" },
      el("summary", {}, "evidence: " + plural((evidence.request_ids || requests).length, "request") +
        (omitted ? " (the first and last " + requests.length / 2 + " listed)" : "")),
      evidenceRequests(requests));
    shown.open = openEvidence.has(key);
    shown.addEventListener("toggle", () => { if (shown.open) openEvidence.add(key); else openEvidence.delete(key); });
    box.appendChild(shown);
  }
  return box;
}
function chaosPath(path) {  // as the text report says it (report/render.py)
  let words = path.path;
  if ("seconds" in path) words += " " + path.seconds + " s";
  else if ("poll" in path) words += " at query " + path.poll;
  else if ("code" in path) words += " " + path.code;
  if ("retry_after" in path) words += " (Retry-After " + path.retry_after + " s)";
  if (path.hit === false) words += " (not reached)";
  return el("li", { class: path.hit === false ? "missed" : "reached", path: path.path }, words);
}
function scheduleRow(row) {
  const paths = row.paths.length ? el("ul", { class: "paths" }, ...row.paths.map(chaosPath)) : el("span", { class: "muted" }, "(the easy path)");
  return el("tr", { attempt: String(row.attempt) },
    el("td", {}, row.attempt), el("td", {}, requestLink(row.request_id)),
    el("td", {}, row.task_id ? el("a", { href: taskLink(row.task_id), title: row.task_id, class: "task-link" }, row.task_id.slice(0, 8) + "…") : "-"),
    el("td", { class: "outcome" }, row.outcome), el("td", {}, paths),
    el("td", { class: "findings" }, row.findings.join(", ") || "-"));
}
function drawChaos(chaos) {
  $("rp-chaos").hidden = !chaos;
  $("rp-no-chaos").hidden = !!chaos;
  if (!chaos) return;
  text("rp-chaos-seed", chaos.seed);
  text("rp-chaos-profile", chaos.profile);
  text("rp-chaos-label", chaos.label ? "test " + chaos.label : "");
  text("rp-chaos-description", chaos.settings && chaos.settings.description ? "Profile: " + chaos.settings.description + "." : "");
  text("rp-chaos-replay", "kf2v-mock run --chaos " + chaos.seed + " --chaos-profile " + chaos.profile + " -- COMMAND");
  const body = $("rp-schedule").tBodies[0];
  clear(body);
  for (const row of chaos.schedule) body.appendChild(scheduleRow(row));
  $("rp-schedule-empty").hidden = chaos.schedule.length > 0;
}
function drawCard(card) {
  const summary = card.summary;
  text("rp-summary", plural(summary.clients, "key") + ", " + plural(summary.requests, "request") + ", " +
    plural(summary.tasks, "task") + ": " + plural(summary.errors, "error") + ", " + plural(summary.warnings, "warning") +
    ", " + summary.infos + " info" + (summary.clean ? " — clean (no error or warning)" : ""));
  $("rp-summary").className = summary.errors ? "sev-text-error" : summary.warnings ? "sev-text-warning" : "";
  const clients = $("rp-clients").tBodies[0];
  clear(clients);
  for (const client of card.clients) clients.appendChild(clientRow(client));
  const findings = $("rp-findings");
  clear(findings);
  for (const finding of card.findings) findings.appendChild(findingBox(finding));
  $("rp-clean").hidden = card.findings.length > 0;
  drawChaos(card.chaos);
  definitions($("rp-thresholds"), Object.entries(card.thresholds));
}
let reportDue = 0;  // the earliest time (ms) of the next timed refresh of the card
async function refreshReport(timed) {
  if (timed && Date.now() < reportDue) return;
  const started = Date.now();
  const query = new URLSearchParams();
  if ($("rp-key").value) query.set("key_id", $("rp-key").value);
  if ($("rp-account").value) query.set("account", $("rp-account").value);
  if ($("rp-final").checked) query.set("final", "true");
  const card = await api("GET", "/_mock/report?" + query);
  // The card is judged from the whole journal (up to 10,000 requests): when that takes a while,
  // the tab asks ten times its cost apart instead of every second, so the emulator stays free.
  reportDue = Date.now() + Math.max(POLL_MS, 10 * (Date.now() - started));
  for (const client of card.clients) {
    if (client.key_id) seenKeys.add(client.key_id);
    if (client.account_id) seenAccounts.add(client.account_id);
  }
  fillSelect($("rp-key"), [...seenKeys].sort());
  fillSelect($("rp-account"), [...seenAccounts].sort());
  text("rp-stage", (card.final ? "judged as the end of the run" : "so far") + " · virtual time " + shortTime(card.generated_at));
  const drawn = JSON.stringify(Object.assign({}, card, { generated_at: null }));
  if (drawn === shownCard) return;  // unchanged: keep the page as it is (open details, selection)
  shownCard = drawn;
  drawCard(card);
}
for (const id of ["rp-key", "rp-account", "rp-final"]) $(id).addEventListener("change", () => refresh());

// --- routing and polling ------------------------------------------------------------------------------
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const view = parts[0] || "tasks";
  const arg = parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : null;
  return { view, arg };
}
const VIEWS = { tasks: "view-tasks", task: "view-task", journal: "view-journal", request: "view-request",
  faults: "view-faults", scenarios: "view-scenarios", report: "view-report" };
let busy = false, pending = false;
async function refresh(timed = false) {
  if (busy) { pending = true; return; }
  busy = true;
  try {
    const { view, arg } = route();
    for (const [name, id] of Object.entries(VIEWS)) $(id).hidden = name !== (VIEWS[view] ? view : "tasks");
    for (const link of document.querySelectorAll("nav a")) {
      const active = link.dataset.view === view || (view === "task" && link.dataset.view === "tasks") || (view === "request" && link.dataset.view === "journal");
      link.classList.toggle("active", active);
    }
    await refreshClock();
    if (view === "task" && arg) await refreshTask(arg);
    else if (view === "journal") await refreshJournal();
    else if (view === "request" && arg) await showRequest(arg);
    else if (view === "faults") await refreshFaults();
    else if (view === "scenarios") await refreshScenarios();
    else if (view === "report") await refreshReport(timed);
    else await refreshTasks();
  } catch (error) {
    if (!(error instanceof AdminError && error.status === 403)) text("clock-error", error.message);
  } finally {
    busy = false;
    if (pending) { pending = false; refresh(); }
  }
}
let timer = null;
async function start() {
  try {
    const health = await api("GET", "/_mock/health");
    text("version", "v" + health.version + " · this listener: " + health.region + " · timing " + health.timing + " · seed " + health.seed);
    fillSelect($("f-region"), Object.values(health.regions).sort());
  } catch (error) {
    if (error instanceof AdminError && error.status === 403) return;  // the token form is shown
    text("clock-error", error.message);
  }
  fillSelect($("f-status"), STATUSES);
  await refresh();
  if (timer === null) {
    timer = setInterval(() => { if (route().view !== "request" && !document.hidden) refresh(true); }, POLL_MS);
  }
}
window.addEventListener("hashchange", () => refresh());
start();
