// A remote tool's resource refuses the presented credential (its guard answers 401/403 with a
// Mandate code, as @mandate/mcp's and core's challengeFor answers do): the call fails with that typed
// refusal, whatever the tool did with the response, so the model reads "Refused by Mandate (CODE)"
// and a terminal refusal can stop the run. A 403 of the application's own stays the tool's result.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tool } from '@langchain/core/tools'
import { challengeFor, MandateError, type Guard } from '@mandate/core'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { mandateFetch, withMandate } from '../src/index.js'
import { createWorld } from './support/world.js'

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
})

/** An HTTP API guarded by a real core guard; `before` runs before each verification. */
async function api(answer: 'guard' | 'app-403', before: () => Promise<void> = async () => {}) {
  let guard: Guard | undefined
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/.well-known/oauth-protected-resource') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource: audience, authorization_servers: [(guard as Guard).issuer] }))
        return
      }
      await before()
      try {
        await (guard as Guard).verifyRequest({ method: req.method ?? 'GET', url: new URL(req.url ?? '/', audience), headers: req.headers as Record<string, string>, tool: 'http.get_balance', arguments: {} })
        if (answer === 'app-403') return void res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'account_locked' }))
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }))
      } catch (err) {
        const c = challengeFor(err)
        res.writeHead(c.status, { ...c.headers, 'content-type': 'application/json' }).end(JSON.stringify({ ...c.body, mandate_code: MandateError.is(err) ? err.code : 'INTERNAL' }))
      }
    })()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  const audience = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { audience, useGuard: (g: Guard) => void (guard = g) }
}

const balanceTool = () =>
  tool(async () => {
    const res = await mandateFetch(`${(globalThis as { apiAudience?: string }).apiAudience as string}/balance`)
    return `HTTP ${res.status}`
  }, { name: 'http_get_balance', description: 'Balance', schema: z.object({}) })

describe('a remote resource refusing the presented credential', () => {
  it('REVOKED at the resource reaches the caller as that MandateError, not as the tool\u2019s text', async () => {
    let revoke: () => Promise<void> = async () => {}
    const a = await api('guard', () => revoke())
    const w = await createWorld({ audiences: [a.audience], tools: [{ type: 'tool_access', tools: ['http.get_balance'] }] })
    a.useGuard(w.guardFor(a.audience))
    ;(globalThis as { apiAudience?: string }).apiAudience = a.audience
    // revoked after the credential was issued, before the resource's guard sees it
    revoke = async () => void (await w.authority.revoke({ mandate: w.grant.claims.jti }, { by: w.grantor.did, reason: 'test' }))
    const t = withMandate(balanceTool(), { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience: a.audience, toolName: (n) => n.replace('_', '.'), remote: true })
    await expect(t.invoke({})).rejects.toMatchObject({ name: 'MandateError', code: 'REVOKED' })
    // as a tool call, the model reads the typed refusal
    const msg = await t.invoke({ name: 'http_get_balance', args: {}, id: 'c1', type: 'tool_call' }).catch((e: unknown) => e)
    expect(String((msg as { content?: unknown }).content ?? (msg as Error).message)).toMatch(/REVOKED/)
  })

  it('a 403 of the application\u2019s own (no Mandate code, no DPoP challenge) is the tool\u2019s result', async () => {
    const a = await api('app-403')
    const w = await createWorld({ audiences: [a.audience], tools: [{ type: 'tool_access', tools: ['http.get_balance'] }] })
    a.useGuard(w.guardFor(a.audience))
    ;(globalThis as { apiAudience?: string }).apiAudience = a.audience
    const t = withMandate(balanceTool(), { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience: a.audience, toolName: (n) => n.replace('_', '.'), remote: true })
    expect(await t.invoke({})).toBe('HTTP 403')
  })
})
