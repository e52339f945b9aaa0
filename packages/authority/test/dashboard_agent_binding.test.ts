/**
 * The dashboard's agents list shows what a workload agent's key is bound to (issuer, subject, rule,
 * the matched claims) and when its registration ends; an agent registered by hand shows neither.
 * Real Authority server on 127.0.0.1, the dashboard's own routes and session.
 */
import { Ed25519Key, jwkThumbprint, publicJwkFromDidKey } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, installDashboard, type AuthorityServer, type DashboardHandle } from '../src/index.js'
import type { AgentView, Page } from '../src/dashboard/api_types.js'

let server: AuthorityServer
let dashboard: DashboardHandle
const admin = Ed25519Key.generate()
const workload = Ed25519Key.generate()
const plain = Ed25519Key.generate()
const EXPIRES = Date.UTC(2031, 0, 2, 3, 4, 5)

beforeAll(async () => {
  server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', extend: (app, authority) => void (dashboard = installDashboard(app, authority)) })
  await server.authority.registerAgent({ did: admin.did, name: 'root-admin', role: 'admin' })
  await server.authority.registerAgent({ did: plain.did, name: 'by-hand' })
  await server.authority.store.insertAgent({
    did: workload.did, jkt: jwkThumbprint(publicJwkFromDidKey(workload.did)), name: 'ci:acme/deploy', role: 'agent', status: 'enabled', disabled: false, createdAt: Date.now(), expiresAt: EXPIRES,
    binding: {
      iss: 'https://token.actions.githubusercontent.com', sub: 'repo:acme/deploy:ref:refs/heads/main', rule: 'github-deploy',
      // claims come from a foreign token: a JWS-shaped value is never shown
      claims: { repository: 'acme/deploy', ref: 'refs/heads/main', smuggled: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2ln' },
    },
  }, { time: Date.now(), type: 'agent.registered', fields: { agent: workload.did } })
})
afterAll(() => server.close())

describe('dashboard agents: workload binding and expiry', () => {
  it('GET /api/agents shows the binding and expiry of a bound agent, and none for others', async () => {
    const res = await fetch(`${server.url}${dashboard.createLoginPath({ did: admin.did }).path}`, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string
    const page = (await (await fetch(`${server.url}/dashboard/api/agents`, { headers: { cookie } })).json()) as Page<AgentView>
    const bound = page.items.find((a) => a.did === workload.did)
    expect(bound).toMatchObject({
      name: 'ci:acme/deploy', expiresAt: '2031-01-02T03:04:05.000Z',
      binding: { iss: 'https://token.actions.githubusercontent.com', sub: 'repo:acme/deploy:ref:refs/heads/main', rule: 'github-deploy', claims: { repository: 'acme/deploy', ref: 'refs/heads/main', smuggled: '[redacted]' } },
    })
    const byHand = page.items.find((a) => a.did === plain.did)
    expect(byHand).toBeDefined()
    expect(byHand && ('binding' in byHand || 'expiresAt' in byHand)).toBe(false)
  })
})
