import type { DashboardIdentity } from '../sessions.js'

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

function shell(base: string, body: string, meta = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mandate — Authority dashboard</title>${meta}
<link rel="stylesheet" href="${escapeHtml(base)}/assets/app.css"></head>
<body>${body}</body></html>`
}

export function loginRequiredPage(base: string, message: string): string {
  return shell(base, `<main class="login"><h1>Mandate dashboard</h1><p>${escapeHtml(message)}</p>
<p>Get a new login link with <code>mandate authority start</code> (printed at start-up).</p></main>`)
}

export function dashboardPage(base: string, csrf: string, identity: DashboardIdentity): string {
  const who = identity.name ? `${identity.name} (${identity.did})` : identity.did
  const meta = `<meta name="mandate-csrf" content="${escapeHtml(csrf)}"><meta name="mandate-base" content="${escapeHtml(base)}">`
  return shell(
    base,
    `<header><h1>Mandate <span>Authority dashboard</span></h1>
<div class="status"><span id="live" class="badge off">connecting…</span><span id="verify" class="badge">audit: checking…</span>
<span class="who" title="${escapeHtml(identity.did)}">signed in as ${escapeHtml(who)}</span></div></header>
<main>
<section id="approvals-section" class="wide"><h2>Pending approvals</h2><div id="approvals"></div></section>
<section class="wide"><h2>Timeline</h2><div id="timeline"></div></section>
<section class="wide"><h2>Tasks and delegation trees</h2><div id="tasks"></div></section>
<section class="wide"><h2>Tool calls</h2><div id="calls"></div></section>
<section><h2>Agents</h2><div id="agents"></div></section>
<section><h2>Revocations</h2><div id="revocations"></div></section>
<section class="wide"><h2>Audit trail</h2><div id="audit"></div></section>
</main>
<script src="${escapeHtml(base)}/assets/app.js" defer></script>`,
    meta,
  )
}
