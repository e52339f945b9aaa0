// The client under test for the MCP conformance suite (`@modelcontextprotocol/conformance client`):
// the runner starts one test server per scenario and launches this program with the server URL as
// its last argument and the scenario in MCP_CONFORMANCE_SCENARIO.
//
// It is Mandate's MCP client as an agent would run it: the SDK `Client` over
// `createMandateHttpTransport`, which gives every `tools/call` its own DPoP-bound call credential
// from a (real, in-process) Mandate Authority by token exchange. Nothing here speaks OAuth to the
// scenario's authorization server: Mandate's client never does (see ../../CONFORMANCE.md).
//
// Exit code 0 when the scenario's MCP exchange completed; 1 with a one-line reason on stderr
// otherwise (the runner records it). Run with `node --conditions=@mandate/source --import tsx`.
import { Ed25519Key, MandateError, type AuthorityClient } from '@mandate/core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createMandateHttpTransport } from '../../src/index.js'

const serverUrl = process.argv.at(-1)
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? ''
const ISSUER = 'http://authority.conformance.test'

interface World {
  client: AuthorityClient
  mandate: string
  close(): Promise<void>
}

/**
 * The real Authority, in process, with a grantor and this agent registered and a mandate granted for
 * exactly this server URL (any tool). Started on the first credential request: the scenarios whose
 * server refuses `initialize` never need it, and the suite starts many clients at once.
 */
function lazyWorld(agent: Ed25519Key, audience: string): () => Promise<World> {
  let world: Promise<World> | undefined
  return () =>
    (world ??= (async () => {
      const { createAuthority, MemoryStore } = await import('@mandate/authority')
      const authority = await createAuthority({ issuer: ISSUER, store: new MemoryStore() })
      const grantor = Ed25519Key.generate()
      await authority.registerAgent({ did: grantor.did, name: 'conformance-host', role: 'grantor' })
      await authority.registerAgent({ did: agent.did, name: 'conformance-agent', role: 'agent', owner: 'conformance' })
      const { token } = await authority.grant({
        grantor: grantor.did, subject: 'conformance@example.com', agent: agent.did, purpose: `conformance ${scenario}`,
        audiences: [audience], tools: [{ type: 'tool_access', tools: ['*'] }], expiresIn: 600,
      })
      return { client: authority.clientFor(agent), mandate: token, close: () => authority.close() }
    })())
}

/** What an agent would do: list the tools, call the first one with arguments its schema asks for. */
async function main(url: string): Promise<void> {
  const agent = Ed25519Key.generate()
  const audience = `${new URL(url).origin}${new URL(url).pathname}`
  const world = lazyWorld(agent, audience)
  let started = false
  const use = () => {
    started = true
    return world()
  }
  const authority: AuthorityClient = {
    issuer: ISSUER,
    delegate: async (r) => (await use()).client.delegate(r),
    callCredential: async (r) => (await use()).client.callCredential(r),
    waitForApproval: async (id, o) => (await use()).client.waitForApproval(id, o),
  }
  // which requests carried a Mandate credential (header names only, never values): printed for the test
  const sent: { method: string; rpc: string; dpop: boolean }[] = []
  const transport = createMandateHttpTransport(url, {
    authority,
    key: agent,
    mandate: async () => (await use()).mandate,
    fetch: async (input, init) => {
      const headers = new Headers(init?.headers)
      const rpc = typeof init?.body === 'string' ? String((JSON.parse(init.body) as { method?: unknown }).method ?? '') : ''
      sent.push({ method: init?.method ?? 'GET', rpc, dpop: /^DPoP /.test(headers.get('authorization') ?? '') && headers.has('dpop') })
      return fetch(input, init)
    },
    // the scenario servers publish no Mandate resource metadata naming this Authority: the server URL is the audience
    discover: false,
  })
  const client = new Client({ name: 'mandate-conformance-client', version: '0.1.0' })
  try {
    await client.connect(transport)
    const { tools } = await client.listTools()
    const tool = tools[0]
    if (tool) {
      const props = Object.keys((tool.inputSchema as { properties?: Record<string, unknown> }).properties ?? {})
      const args = Object.fromEntries(props.map((p, i) => [p, i + 2]))
      const result = await client.callTool({ name: tool.name, arguments: args })
      if (result.isError) throw new Error(`tool ${tool.name} answered with an error`)
    }
  } finally {
    process.stdout.write(`${JSON.stringify({ mandateRequests: sent, credentialsRequested: started })}\n`)
    await client.close().catch(() => undefined)
    if (started) await (await world()).close()
  }
}

if (!serverUrl || !/^https?:\/\//.test(serverUrl)) {
  process.stderr.write('usage: client.ts <server-url>\n')
  process.exit(2)
}
main(serverUrl).then(
  () => process.exit(0),
  (err: unknown) => {
    // never the token or the proof: the code and message only
    const reason = MandateError.is(err) ? `${err.code}: ${err.message}` : err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    process.stderr.write(`mandate-conformance-client: ${scenario}: ${reason.slice(0, 300)}\n`)
    process.exit(1)
  },
)
