// RFC 9864: Mandate's proofs say `Ed25519`; a resource whose RFC 9728 metadata advertises only the
// older `EdDSA` name gets `EdDSA` proofs (a real guarded server on 127.0.0.1, which accepts both).
import type { Ed25519Key } from '@mandate/core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMandateFetch } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'

let world: TestAuthority
let server: RunningServer
let agent: Ed25519Key
let mandate: string

beforeAll(async () => {
  world = await createTestAuthority()
  server = await startHttpServer(world)
  agent = await world.agent('alg-agent')
  mandate = (await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })).token
})
afterAll(async () => {
  await server.close()
  await world.close()
})

/** A fetch that may rewrite the resource's advertised algs and records each tools/call proof's header alg. */
function network(advertise: string[] | undefined, algs: string[]): typeof fetch {
  return (async (url: string | URL | Request, init?: RequestInit) => {
    const h = new Headers(init?.headers)
    const proof = h.get('dpop')
    if (proof) algs.push((JSON.parse(Buffer.from(proof.split('.')[0] as string, 'base64url').toString()) as { alg: string }).alg)
    const res = await fetch(url, init)
    if (advertise && String(url).includes('/.well-known/oauth-protected-resource')) {
      const doc = (await res.json()) as Record<string, unknown>
      return new Response(JSON.stringify({ ...doc, dpop_signing_alg_values_supported: advertise }), { status: res.status, headers: { 'content-type': 'application/json' } })
    }
    return res
  }) as typeof fetch
}

async function callEcho(advertise: string[] | undefined): Promise<string[]> {
  const algs: string[] = []
  const client = new Client({ name: 'alg', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { fetch: createMandateFetch({ serverUrl: server.url, authority: world.clientFor(agent), key: agent, mandate, fetch: network(advertise, algs) }) }))
  try {
    const r = await client.callTool({ name: 'echo', arguments: { text: 'hi' } })
    expect(r.isError).toBeFalsy()
  } finally {
    await client.close()
  }
  return algs
}

describe('the proof alg follows what the resource advertises', () => {
  it('Ed25519 by default and when advertised', async () => {
    expect(await callEcho(undefined)).toEqual(['Ed25519'])
    expect(await callEcho(['EdDSA', 'Ed25519'])).toEqual(['Ed25519'])
  })
  it('EdDSA for a resource that names only EdDSA', async () => {
    expect(await callEcho(['EdDSA'])).toEqual(['EdDSA'])
  })
})
