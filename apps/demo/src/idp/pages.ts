/**
 * The local provider's pages: the login form, the consent refusal for unknown clients, errors.
 * Plain HTML with no script (the CSP allows none); every interpolated value is escaped.
 */

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

const STYLE = `body{font:16px system-ui,sans-serif;background:#f4f5f7;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px #0002;width:min(22rem,90vw)}
h1{font-size:1.25rem;margin:0 0 .25rem}p{color:#555;margin:.25rem 0 1rem}label{display:block;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #bbb;border-radius:6px}
button{margin-top:1.25rem;width:100%;padding:.6rem;font:inherit;background:#2457d6;color:#fff;border:0;border-radius:6px;cursor:pointer}
.error{color:#b00020;font-weight:600}`

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`
}

/** The login form of interaction `uid` (posts to `/interaction/:uid/login`). */
export function loginPage(uid: string, clientId: string, error?: string): string {
  return page('Sign in — local OpenID provider', `<h1>Sign in</h1><p>to continue to <strong>${esc(clientId)}</strong></p>
${error ? `<p class="error" role="alert" id="login-error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button></form>`)
}

export function consentPage(clientId: string): string {
  return page('Not allowed', `<h1>Not allowed</h1><p>${esc(clientId)} is not a client this provider signs you in to.</p>`)
}

export function errorPage(title: string, detail: string): string {
  return page(title, `<h1>${esc(title)}</h1>${detail ? `<p>${esc(detail)}</p>` : ''}`)
}
