/**
 * Review findings on the dashboard, each fixed and pinned here over real HTTP: a login link cannot
 * swap the session of another identity (login CSRF), event streams are bounded per session and end
 * with their session, the first-page snapshot reads only the newest records, and credential-like
 * member names are redacted whatever their case.
 */
import { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, installDashboard, type AuthorityServer, type DashboardHandle } from '../src/index.js'
import { redact } from '../src/dashboard/source.js'

let server: AuthorityServer
let dashboard: DashboardHandle
const admin = Ed25519Key.generate()
const bob = Ed25519Key.generate()

beforeAll(async () => {
  server = await createAuthorityServer({ port: 0, extend: (app, authority) => void (dashboard = installDashboard(app, authority, { historyLimit: 5 })) })
  await server.authority.registerAgent({ did: admin.did, name: 'root-admin', role: 'admin' })
  await server.authority.registerAgent({ did: bob.did, name: 'bob', role: 'approver' })
})
afterAll(async () => {
  dashboard.close()
  await server.close()
})

async function login(key: Ed25519Key, cookie?: string): Promise<Response> {
  return fetch(`${server.url}${dashboard.createLoginPath({ did: key.did }).path}`, { redirect: 'manual', headers: { 'sec-fetch-site': 'none', ...(cookie ? { cookie } : {}) } })
}
const cookieOf = (res: Response): string => (res.headers.get('set-cookie') ?? '').split(';')[0] as string

describe('dashboard hardening', () => {
  it('a login link of another identity does not replace the signed-in session', async () => {
    const mine = cookieOf(await login(admin))
    const swap = await login(bob, mine)
    expect(swap.status).toBe(409)
    expect(swap.headers.get('set-cookie')).toBeNull()
    const me = (await (await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: mine } })).json()) as { me: { did: string } }
    expect(me.me.did).toBe(admin.did)
    // the same identity signing in again gets a fresh session and the old one ends
    const again = await login(admin, mine)
    expect(again.status).toBe(303)
    expect((await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: mine } })).status).toBe(401)
  })

  it('event streams are capped per session and end when the session is signed out', async () => {
    const cookie = cookieOf(await login(admin))
    const open: AbortController[] = []
    const statuses: number[] = []
    const bodies: Response[] = []
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController()
      open.push(ac)
      const res = await fetch(`${server.url}/dashboard/api/events`, { headers: { cookie }, signal: ac.signal })
      statuses.push(res.status)
      if (res.status === 200) bodies.push(res)
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429])
    // sign out: every stream of that session ends (the server closes it) within a poll interval
    const out = await fetch(`${server.url}/dashboard/logout`, { method: 'POST', headers: { cookie, origin: server.url } })
    expect(out.status).toBe(200)
    const ended = await Promise.all(bodies.map(async (res) => {
      const reader = (res.body as ReadableStream<Uint8Array>).getReader()
      const timeout = new Promise<'open'>((r) => setTimeout(() => r('open'), 8_000))
      const drain = (async () => { for (;;) if ((await reader.read()).done) return 'ended' as const })()
      return Promise.race([drain, timeout])
    }))
    expect(ended).toEqual(['ended', 'ended', 'ended', 'ended'])
    for (const ac of open) ac.abort()
  })

  it('the first-page snapshot holds only the newest historyLimit records', async () => {
    for (let i = 0; i < 12; i++) await server.authority.registerAgent({ did: Ed25519Key.generate().did, name: `a${i}` })
    const cookie = cookieOf(await login(admin))
    const state = (await (await fetch(`${server.url}/dashboard/api/state`, { headers: { cookie } })).json()) as { events: { seq: number }[]; headSeq: number }
    expect(state.events.length).toBe(5)
    expect(state.events[state.events.length - 1]?.seq).toBe(state.headSeq)
  })

  it('credential-like member names are redacted in any case', () => {
    const out = redact({ client_secret: 'x', Refresh_Token: 'y', Authorization: 'z', apiKey: 'k', password: 'p', amount: 3, authorization_details: [{ tools: ['a'] }], token_hash: 'h' }) as Record<string, unknown>
    for (const k of ['client_secret', 'Refresh_Token', 'Authorization', 'apiKey', 'password']) expect(out[k]).toBe('[redacted]')
    expect(out.amount).toBe(3)
    expect(out.authorization_details).toEqual([{ tools: ['a'] }])
    expect(out.token_hash).toBe('h')
  })
})
