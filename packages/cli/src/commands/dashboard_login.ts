import { printable } from '../io.js'
import { EXIT, refused } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, type Command } from '../command.js'
import { serverClient } from '../server_options.js'

export const dashboardLogin: Command = {
  path: ['dashboard', 'login'],
  summary: 'Get a fresh one-time dashboard login URL (your key must be an admin or approver).',
  details:
    'The URL holds a single-use 128-bit code valid for 10 minutes; opening it signs the browser in as you\n' +
    '(HttpOnly SameSite=Strict session cookie). Approvals made in the dashboard are recorded under your identity.\n\n' +
    'Example:\n  mandate dashboard login --url http://127.0.0.1:7400 --key .mandate/authority.db.admin.jwk',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const res = await client.post<{ login_url?: unknown; expires_at?: unknown }>('/dashboard/api/login-codes', {})
    // a URL, and printed as text only (a peer's control characters never reach the terminal)
    if (typeof res.login_url !== 'string' || !/^https?:\/\/[!-~]{1,2000}$/.test(res.login_url)) throw refused('the Authority did not return a login URL', 'INVALID_RESPONSE')
    if (ctx.io.json) ctx.io.out(JSON.stringify({ loginUrl: res.login_url, expiresAt: res.expires_at }, null, 2))
    else ctx.io.out(`one-time login URL (single use, expires in 10 minutes):\n  ${res.login_url}`)
    return EXIT.OK
  },
}
