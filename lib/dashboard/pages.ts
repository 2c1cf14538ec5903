// The dashboard's HTML: the sign-in form and the page the script fills (assets.ts). Server-rendered text is
// escaped here; data from the proxy (routes, certificates, errors) is only ever put into the page by the
// script through textContent, never as HTML. No inline script or style: the Content-Security-Policy forbids it.

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string, head = ""): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/assets/dashboard.css">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
${head}</head>
<body>
${body}
</body>
</html>
`;
}

/** The sign-in form; `csrf` is the pre-session token also set as a cookie; `message` an error in words. */
export function loginPage(options: { csrf: string; message: string | null; username: string }): string {
  const message = options.message === null
    ? ""
    : `<p class="error" role="alert">${escapeHtml(options.message)}</p>\n`;
  return page(
    "nexo: sign in",
    `<main class="login">
<h1>nexo</h1>
${message}<form method="post" action="/login">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label>User name <input name="username" autocomplete="username" value="${
      escapeHtml(options.username)
    }" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
</main>`,
  );
}

/** The dashboard's frame; assets.ts's script fills the sections from /api/overview. */
export function appPage(options: { csrf: string; username: string }): string {
  return page(
    "nexo",
    `<header>
<h1>nexo</h1>
<span id="summary" class="muted"></span>
<form method="post" action="/logout" class="logout">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<span class="muted">${escapeHtml(options.username)}</span> <button type="submit">Sign out</button>
</form>
</header>
<main>
<p id="problem" class="error" role="alert" hidden></p>
<section><h2>Routes</h2><table id="routes"><thead><tr><th>Host</th><th>Goes to</th><th>Certificate</th><th>Requests</th><th>Per minute</th><th>5xx</th><th>p50 / p99</th><th>Upstream</th><th></th></tr></thead><tbody></tbody></table></section>
<section><h2>Certificates</h2><table id="certificates"><thead><tr><th>Names</th><th>Source</th><th>Expires</th><th>Days left</th><th>Next renewal</th><th>Last error</th><th></th></tr></thead><tbody></tbody></table></section>
<section><h2>Server</h2><dl id="server"></dl></section>
<section><h2>Traffic</h2><p class="muted">Requests per minute over the last hour and per hour over the last day, by status: 2xx, 3xx, 4xx, 5xx.</p><div id="traffic"></div></section>
<section><h2>Latest requests</h2><table id="requests"><thead><tr><th>Time</th><th>Client</th><th>Host</th><th>Method</th><th>Path</th><th>Status</th><th>ms</th></tr></thead><tbody></tbody></table></section>
<section><h2>Add or change a route</h2>
<form id="route-form">
<label>Host <input name="host" required placeholder="app.example.com"></label>
<label>Goes to <select name="kind"><option value="upstream">an upstream (proxy)</option><option value="redirect">a redirect</option></select></label>
<label>URL <input name="target" required placeholder="http://127.0.0.1:3000"></label>
<button type="submit">Save route</button> <span id="route-status" role="status"></span>
</form>
<ol id="route-issues" class="issues"></ol>
</section>
<section><h2>Config</h2>
<p class="muted" id="config-file"></p>
<textarea id="config-text" spellcheck="false" rows="24" aria-label="the config file"></textarea>
<p><button id="config-save" type="button">Save config</button> <span id="config-status" role="status"></span></p>
<ol id="config-issues" class="issues"></ol>
</section>
<section><h2>Log</h2><table id="log"><thead><tr><th>Time</th><th>Level</th><th>Event</th><th>Details</th></tr></thead><tbody></tbody></table></section>
</main>`,
    `<meta name="csrf-token" content="${escapeHtml(options.csrf)}">
<script type="module" src="/assets/dashboard.js"></script>
`,
  );
}
