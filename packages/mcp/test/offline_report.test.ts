/**
 * A guarded MCP server receiving an offline chain (`root~hop~hop` in `_meta`) reports the call to
 * the Authority with the chain's hops, so that the Authority's audit records the delegation it never
 * minted. Real in-process Authority, real McpServer and SDK Client over InMemoryTransport.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { createAuthority } from '@mandate/authority'
import { attenuateMandate, createGuard, createProof, Ed25519Key } from '@mandate/core'
import { expect, it } from 'vitest'
import { CREDENTIAL_META_KEY } from '../src/index.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'
import { COMPACT_JWS } from './helpers/compact_jws.js'

const AUD = 'urn:mandate:test:offline-tools'

it('reports the offline hops a guarded call was made with, and the Authority audits them', async () => {
  const authority = await createAuthority({ issuer: 'http://authority.test', callModes: { offline: true } })
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  const b = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'orchestrator' })
  const root = await authority.grant({
    grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], scopes: ['tools:read'],
    tools: [{ type: 'tool_access', tools: ['echo', 'add'] }], offline: { maxHops: 2 },
  })
  // a delegates to b offline (b is unknown to the Authority), then b narrows to one call
  const hop1 = attenuateMandate(root.token, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['echo'] }] })
  const chain = attenuateMandate(hop1, b, { kind: 'call', audience: AUD, tool: 'echo', arguments: { text: 'hi' } })

  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD, revocation: authority.revocationSource() })
  const log: HandlerLog = { count: 0, calls: [] }
  const server = createToolServer({ guard, audit: authority }, log)
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
  await server.connect(serverTransport)
  const client = new Client({ name: 'agent', version: '1' })
  await client.connect(clientTransport)
  const args = { text: 'hi' }
  const proof = createProof(b, { audience: AUD, accessToken: chain, tool: 'echo', arguments: args })
  const res = await client.callTool({ name: 'echo', arguments: args, _meta: { [CREDENTIAL_META_KEY]: { mandate: chain, proof } } })
  expect(res.content).toEqual([{ type: 'text', text: 'echo:hi' }])
  expect(log.calls[0]?.call.actorChain).toEqual([a.did, b.did])

  const [report] = await authority.audit.query({ type: 'call.report' })
  const hops = report?.fields.offline_hops as Array<Record<string, unknown>>
  expect(hops.map((h) => [h.kind, h.holder, h.parent])).toEqual([['delegation', b.did, root.claims.jti], ['call', b.did, hops[0]?.jti]])
  expect(report?.fields).toMatchObject({ tool: 'echo', decision: 'allowed', outcome: 'success', jti: hops[1]?.jti })
  expect(JSON.stringify(await authority.audit.query({}))).not.toMatch(COMPACT_JWS)
  await client.close()
  await authority.close()
})
