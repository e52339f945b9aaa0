/**
 * The dashboard's two HTML documents: the sign-in notice and the application shell. Neither holds
 * an inline script or style (the CSP forbids both); the shell carries the session's CSRF token and
 * the mount point in <meta> tags for the bundled script, and everything else is drawn by the script.
 */
import type { DashboardIdentity } from '../sessions.js'
import type { DashboardBundle } from './bundle.js'

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

function shell(base: string, bundle: DashboardBundle | undefined, body: string, meta = ''): string {
  const css = bundle ? `\n<link rel="stylesheet" href="${escapeHtml(base)}/assets/${escapeHtml(bundle.css.name)}">` : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mandate — Authority dashboard</title>
<link rel="icon" href="${escapeHtml(base)}/favicon.svg" type="image/svg+xml">${meta}${css}</head>
<body>${body}</body></html>`
}

/** The page a visitor without a session (or with a spent login code) sees. */
export function loginRequiredPage(base: string, message: string, bundle?: DashboardBundle): string {
  return shell(
    base,
    bundle,
    `<main class="login"><h1>Mandate dashboard</h1><p>${escapeHtml(message)}</p>
<p>Get a one-time login link with <code>mandate dashboard login --url &lt;authority URL&gt; --key &lt;admin or approver key&gt;</code>
(<code>mandate authority start</code> also prints one at start-up, in a terminal).</p></main>`,
  )
}

/**
 * A login link opened from another site, a sibling origin, or a browser that does not say where it
 * came from: the session cookie (SameSite=Strict) is not sent on such a navigation, so whether this
 * browser is already signed in as someone else cannot be known here. The link is not redeemed; this
 * page names whom it signs in as and offers it as a form posted to this origin, which carries the
 * cookies (for the "already signed in as someone else" check) and this origin's Origin header.
 */
export function loginContinuePage(base: string, form: { code: string; next?: string }, who: DashboardIdentity | undefined, bundle?: DashboardBundle): string {
  const b = escapeHtml(base)
  const as = who ? (who.name ? `${who.name} (${who.did})` : who.did) : undefined
  return shell(
    base,
    bundle,
    `<main class="login"><h1>Mandate dashboard</h1><p>This login link was opened from another site or another page.</p>
${as ? `<p>It signs this browser in as <strong>${escapeHtml(as)}</strong>.</p>` : '<p>The link is invalid, expired or already used.</p>'}
<form method="post" action="${b}/login"><input type="hidden" name="code" value="${escapeHtml(form.code)}">${form.next !== undefined ? `<input type="hidden" name="next" value="${escapeHtml(form.next)}">` : ''}
<p><button class="primary" type="submit">Continue to sign in</button></p></form>
<p>If you did not ask for a login link, close this page.</p></main>`,
  )
}

/** Served when the front-end bundle was never built (running from a fresh checkout without `pnpm build`). */
export function bundleMissingPage(base: string): string {
  return shell(
    base,
    undefined,
    `<main class="login"><h1>Mandate dashboard</h1><p>The dashboard front end is not built.</p>
<p>Build it with <code>pnpm --filter @mandate/authority build</code> (or <code>node packages/authority/scripts/build_dashboard.mjs</code>).</p></main>`,
  )
}

/** The application shell; the bundled script renders the views into #view and routes client-side. */
export function dashboardPage(base: string, csrf: string, identity: DashboardIdentity, bundle: DashboardBundle): string {
  const who = identity.name ? `${identity.name} (${identity.did})` : identity.did
  const b = escapeHtml(base)
  const meta = `<meta name="mandate-csrf" content="${escapeHtml(csrf)}"><meta name="mandate-base" content="${b}">`
  const link = (path: string, label: string) => `<li><a href="${b}${path}" data-nav="${path}">${label}</a></li>`
  return shell(
    base,
    bundle,
    `<a class="skip" href="#view">Skip to content</a>
<header class="top"><p class="brand"><a href="${b}/">Mandate <span>Authority</span></a></p>
<nav aria-label="Dashboard"><ul>${link('/', 'Overview')}${link('/tasks', 'Tasks')}${link('/approvals', 'Approvals')}${link('/calls', 'Calls')}${link('/agents', 'Agents')}${link('/audit', 'Audit')}</ul></nav>
<div class="status"><span id="live" class="badge off" role="status">connecting…</span><span id="verify" class="badge">audit: checking…</span>
<span class="who" title="${escapeHtml(identity.did)}">signed in as ${escapeHtml(who)}</span><button type="button" id="signout" class="signout">Sign out</button></div></header>
<main id="view" tabindex="-1"><p class="empty">Loading…</p></main>
<div id="toast" role="status" aria-live="polite"></div>
<script type="module" src="${b}/assets/${escapeHtml(bundle.js.name)}"></script>`,
    meta,
  )
}
