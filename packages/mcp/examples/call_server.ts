// README example: call a protected MCP server; every tools/call gets its own credential.
import type { AuthorityClient, Ed25519Key } from '@mandate/core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createMandateHttpTransport } from '@mandate/mcp'

export async function callServer(opts: { url: string; authority: AuthorityClient; agentKey: Ed25519Key; mandate: string }) {
  const client = new Client({ name: 'my-agent', version: '1.0.0' })
  await client.connect(
    createMandateHttpTransport(opts.url, {
      authority: opts.authority, // in-process `authority.clientFor(key)` or `createHttpAuthorityClient(...)`
      key: opts.agentKey, // signs the DPoP proof of each call
      mandate: opts.mandate, // the task mandate each call credential is narrowed from
    }),
  )
  const result = await client.callTool({ name: 'billing.refund', arguments: { amount: 42 } })
  await client.close()
  return result
}
