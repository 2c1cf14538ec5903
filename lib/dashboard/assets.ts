// The dashboard's script and style, served by nexo itself (no CDN: the VPS may reach nobody but its users).
// The script fetches /api/overview every 5 s and writes it into the page with textContent only, so a route
// name or an error message can never become markup. No framework: a few tables need none.

export const DASHBOARD_JS = `// nexo dashboard
const REFRESH_MS = 5000;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fill(table, rows, columns) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const item of rows) {
    const row = body.insertRow();
    for (const column of columns) {
      const [text, className, action] = column(item);
      const td = cell(row, text, className);
      if (action) td.append(action);
    }
  }
}

const csrf = document.querySelector('meta[name="csrf-token"]').content;

// "Renew now": the server queues it through the same scheduler and lock as any renewal.
function renewButton(names) {
  const button = document.createElement("button");
  button.textContent = "Renew now";
  button.className = "renew";
  button.addEventListener("click", async () => {
    button.disabled = true;
    const response = await fetch("/api/renew", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ names }),
    });
    const answer = await response.json().catch(() => ({}));
    button.textContent = response.ok ? "Renewal queued" : "Not renewed: " + (answer.error || response.status);
  });
  return button;
}

// Whether a route's upstream answers: health checks for balanced routes, else its last 5 minutes of 502/504.
function upstreamState(route, history) {
  if (route.upstreams) {
    const up = route.upstreams.filter((u) => u.healthy !== false).length;
    return [up + " of " + route.upstreams.length + " healthy", up < route.upstreams.length ? "warn" : ""];
  }
  if (!route.upstream) return [""];
  if (!history || history.recent.requests === 0) return ["no requests in 5 min", "muted"];
  const failed = history.recent.gateway;
  return failed === 0 ? ["answering"] : [failed + " of " + history.recent.requests + " failed (502/504)", "warn"];
}

function daysLeft(iso) {
  return Math.floor((Date.parse(iso) - Date.now()) / 86400000);
}

function term(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

// The previous refresh's totals, for the rate per minute.
let previous = null;

function render(data) {
  const status = data.status;
  const served = status.certificates.served;
  const stored = status.certificates.stored;
  const renewals = (status.acme && status.acme.renewals) || {};
  document.getElementById("summary").textContent = "nexo " + status.nexo + ", up " + Math.round(status.uptime_s / 60) + " min";
  const traffic = data.traffic || {};
  const perMinute = (host) => {
    if (!previous || !traffic[host]) return "";
    const before = (previous.traffic[host] || { requests: 0 }).requests;
    return String(Math.round((traffic[host].requests - before) * 60000 / Math.max(1, data.at - previous.at)));
  };
  fill(document.getElementById("routes"), status.routes, [
    (r) => [r.host],
    (r) => [r.upstream || (r.upstreams ? r.upstreams.map((u) => u.url).join(", ") : r.redirect ? "redirect " + r.redirect : r.admin ? "this dashboard" : "sign-in")],
    (r) => { const c = (data.covering || {})[r.host]; return c ? [c.names.join(", ") + " (" + daysLeft(c.not_after) + " days)"] : ["none yet", "warn"]; },
    (r) => [String((traffic[r.host] || { requests: 0 }).requests), "number"],
    (r) => [perMinute(r.host), "number"],
    (r) => { const e = (traffic[r.host] || { errors: 0 }).errors; return [String(e), e > 0 ? "number warn" : "number"]; },
    (r) => { const h = (data.history || {})[r.host]; return [h && h.p50Ms !== null ? h.p50Ms + " / " + h.p99Ms + " ms" : "", "number"]; },
    (r) => upstreamState(r, (data.history || {})[r.host]),
    (r) => ["", "", removeButton(r.host)],
  ]);
  previous = data;
  const pending = new Map([...document.querySelectorAll("button.renew:disabled")].map((b) => [b.closest("tr").cells[0].textContent, b.textContent]));
  fill(document.getElementById("certificates"), served, [
    (c) => [c.names.join(", ")],
    (c) => [c.source],
    (c) => [c.not_after.slice(0, 10)],
    // The local CA's week-long certificates always have few days left: renewing them is nexo's own business.
    (c) => { const d = daysLeft(c.not_after); return [String(d), d < 7 && c.source !== "internal" ? "warn" : ""]; },
    (c) => { const r = renewals[c.names.slice().sort().join(",")] || Object.entries(renewals).find(([k]) => c.names.includes(k.split(",")[0]))?.[1]; return [r ? r.renews_at.slice(0, 16).replace("T", " ") : ""]; },
    (c) => { const s = stored.find((x) => x.names.some((n) => c.names.includes(n))); return s && s.last_error ? [s.last_error + " (" + s.failures + " failed attempt" + (s.failures === 1 ? "" : "s") + (s.next_attempt_at ? "; next " + s.next_attempt_at.slice(0, 16).replace("T", " ") : "") + ")", "warn"] : [""]; },
    (c) => {
      if (c.source !== "acme") return [""];
      const button = renewButton(c.names);
      const shown = pending.get(c.names.join(", "));
      if (shown) { button.disabled = true; button.textContent = shown; }
      return ["", "", button];
    },
  ]);
  const server = document.getElementById("server");
  server.replaceChildren();
  term(server, "HTTPS", status.listen);
  term(server, "HTTP", status.http_listen || "off");
  term(server, "Config", status.config.file + " (version " + status.config.version + ", loaded " + status.config.loaded_at.slice(0, 19).replace("T", " ") + ")");
  term(server, "Memory", Math.round(data.memory.rss / 1048576) + " MiB");
  term(server, "ACME worker", status.acme ? status.acme.worker : "not used");
  renderTraffic(data.history || {});
  const time = (line) => [line.at.slice(11, 19)];
  fill(document.getElementById("requests"), data.requests.slice().reverse(), [
    time,
    (l) => [String(l.fields.client ?? "")],
    (l) => [String(l.fields.host ?? "")],
    (l) => [String(l.fields.method ?? "")],
    (l) => [String(l.fields.path ?? "")],
    (l) => [String(l.fields.status ?? ""), Number(l.fields.status) >= 500 ? "warn" : ""],
    (l) => [String(l.fields.duration_ms ?? ""), "number"],
  ]);
  fill(document.getElementById("log"), data.logs.slice().reverse(), [
    time,
    (l) => [l.level, l.level === "error" || l.level === "warn" ? "warn" : ""],
    (l) => [l.msg],
    (l) => [Object.entries(l.fields).map(([k, v]) => k + "=" + v).join(" ")],
  ]);
  if (status.storage) term(server, "Storage", status.storage.address + (status.storage.reachable ? " (reachable)" : " (UNREACHABLE: " + status.storage.error + ")"));
}

// The config editor and the route form: the server checks every change as \`nexo check\` does and writes
// only a valid config; the live reload applies it.
let configVersion = null;

async function loadConfig() {
  const response = await fetch("/api/config");
  if (!response.ok) return;
  const data = await response.json();
  document.getElementById("config-text").value = data.text;
  document.getElementById("config-file").textContent = data.file;
  configVersion = data.version;
}

function selectLine(textarea, line) {
  const lines = textarea.value.split("\\n");
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

function showIssues(list, issues, textarea) {
  list.replaceChildren();
  for (const issue of issues) {
    const item = document.createElement("li");
    item.textContent = "line " + issue.line + ", column " + issue.col + ": " + issue.message;
    item.dataset.line = String(issue.line);
    if (textarea) item.addEventListener("click", () => selectLine(textarea, issue.line));
    list.append(item);
  }
  if (textarea && issues.length > 0) selectLine(textarea, issues[0].line);
}

async function send(path, body, status, issues, textarea) {
  status.textContent = "Checking...";
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify({ ...body, version: configVersion }),
  });
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    status.textContent = "Saved: nexo applies it now.";
    showIssues(issues, [], null);
    await loadConfig();
    setTimeout(refresh, 1000);
  } else {
    status.textContent = "Not saved: " + (answer.error || "the server answered " + response.status);
    showIssues(issues, answer.issues || [], textarea);
  }
  return response.ok;
}

function removeButton(host) {
  const button = document.createElement("button");
  button.textContent = "Remove";
  button.className = "remove";
  button.addEventListener("click", async () => {
    if (button.dataset.confirm !== "yes") {
      button.dataset.confirm = "yes";
      button.textContent = "Remove " + host + "?";
      return;
    }
    await send("/api/route", { action: "remove", host }, document.getElementById("route-status"), document.getElementById("route-issues"), null);
  });
  return button;
}

document.getElementById("route-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const change = { action: "set", host: form.host.value, [form.kind.value]: form.target.value };
  if (await send("/api/route", change, document.getElementById("route-status"), document.getElementById("route-issues"), null)) form.reset();
});

document.getElementById("config-save").addEventListener("click", () => {
  const textarea = document.getElementById("config-text");
  send("/api/config", { text: textarea.value }, document.getElementById("config-status"), document.getElementById("config-issues"), textarea);
});

loadConfig();

// Bar charts drawn as SVG elements (attributes only: no inline style, which the CSP forbids).
const SVG = "http://www.w3.org/2000/svg";
const CLASS_COLORS = [null, "#1f7a4d", "#2f6db3", "#c77800", "#b3261e"];

function chart(buckets, label, unit) {
  const width = 480, height = 60, gap = 1;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const total = buckets.reduce((n, b) => n + b.requests, 0);
  svg.setAttribute("aria-label", label + ": " + total + " requests");
  const max = Math.max(1, ...buckets.map((b) => b.requests));
  const bar = width / buckets.length;
  buckets.forEach((bucket, i) => {
    let y = height;
    for (let k = 1; k < 5; k++) {
      const h = bucket.status[k] * height / max;
      if (h <= 0) continue;
      y -= h;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(i * bar));
      rect.setAttribute("y", String(y));
      rect.setAttribute("width", String(Math.max(1, bar - gap)));
      rect.setAttribute("height", String(h));
      rect.setAttribute("fill", CLASS_COLORS[k]);
      const title = document.createElementNS(SVG, "title");
      title.textContent = new Date(bucket.start).toISOString().slice(11, 16) + " " + unit + ": " + bucket.requests + " requests";
      rect.append(title);
      svg.append(rect);
    }
  });
  return svg;
}

function renderTraffic(history) {
  const box = document.getElementById("traffic");
  box.replaceChildren();
  for (const [route, traffic] of Object.entries(history)) {
    const figure = document.createElement("figure");
    figure.className = "route-traffic";
    const caption = document.createElement("figcaption");
    const hour = traffic.minutes.reduce((n, b) => n + b.requests, 0);
    const bytes = traffic.minutes.reduce((n, b) => n + b.bytes, 0);
    caption.textContent = (route === "-" ? "unknown hosts" : route) + ": " + hour + " requests, " +
      Math.round(bytes / 1024) + " KiB in the last hour" +
      (traffic.p50Ms === null ? "" : "; p50 " + traffic.p50Ms + " ms, p99 " + traffic.p99Ms + " ms (5 min)");
    figure.append(caption, chart(traffic.minutes, route + " last hour", "minute"), chart(traffic.hours, route + " last day", "hour"));
    box.append(figure);
  }
}

async function refresh() {
  const problem = document.getElementById("problem");
  try {
    const response = await fetch("/api/overview", { headers: { accept: "application/json" } });
    if (response.status === 401) { location.assign("/login"); return; }
    if (!response.ok) throw new Error("the server answered " + response.status);
    render(await response.json());
    problem.hidden = true;
  } catch (error) {
    problem.textContent = "Cannot refresh: " + error.message;
    problem.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
`;

/** A padlock-green square with an "n": the tab's icon (browsers ask for one; a 404 would be logged). */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">` +
  `<rect width="16" height="16" rx="3" fill="#1f7a4d"/>` +
  `<path d="M4.5 12V6.5h1.6v.8c.5-.7 1.2-1 2-1 1.4 0 2.4.9 2.4 2.6V12H8.9V9.2c0-.9-.4-1.4-1.2-1.4-.8 0-1.6.6-1.6 ` +
  `1.6V12z" fill="#fff"/></svg>`;

export const DASHBOARD_CSS =
  `:root { font-family: system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
body { margin: 0; }
header { display: flex; align-items: baseline; gap: 1rem; padding: 0.75rem 1.5rem; background: #1d232a; color: #fff; }
header h1 { font-size: 1.2rem; margin: 0; }
header .logout { margin-left: auto; }
main { padding: 1rem 1.5rem; max-width: 72rem; }
main.login { max-width: 22rem; margin: 10vh auto; background: #fff; padding: 2rem; border-radius: 8px; }
label { display: block; margin: 0.75rem 0; }
input { display: block; width: 100%; box-sizing: border-box; padding: 0.4rem; margin-top: 0.25rem; }
button { padding: 0.4rem 1rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1rem; background: #fff; padding: 0.75rem; }
dd { margin: 0; }
.muted { color: #9aa4ae; }
.number { text-align: right; font-variant-numeric: tabular-nums; }
.route-traffic { background: #fff; margin: 0 0 0.75rem; padding: 0.5rem 0.75rem; }
.route-traffic figcaption { margin-bottom: 0.3rem; }
.chart { width: 48%; height: 60px; margin-right: 2%; background: #f6f7f9; }
textarea { width: 100%; box-sizing: border-box; font-family: ui-monospace, monospace; font-size: 0.9rem; }
.issues li { color: #b3261e; cursor: pointer; }
#route-form { display: flex; gap: 1rem; align-items: end; flex-wrap: wrap; background: #fff; padding: 0.75rem; }
#route-form label { margin: 0; }
.error, .warn { color: #b3261e; }
`;
