import { createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
import { startAuthorityServer } from '@mandate/authority'

export async function server(dbPath: string): Promise<string> {
  const server = await startAuthorityServer({ dbPath, port: 0, hostname: '127.0.0.1' })
  const { authority } = server
  const host = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  const b = Ed25519Key.generate()
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'planner' })
  await authority.registerAgent({ did: b.did, name: 'worker' })
  const { token } = await authority.grant({
    grantor: host.did, subject: 'alice@example.com', agent: a.did, audiences: ['http://127.0.0.1:7500/mcp'],
    tools: [{ type: 'tool_access', tools: ['github.*'] }],
  })

  // agents talk to the server with their own keys: client assertion + DPoP on every request
  const planner = createHttpAuthorityClient({ issuer: server.url, key: a })
  const child = await planner.delegate({ mandate: token, to: b.did, tools: [{ type: 'tool_access', tools: ['github.get_file'] }] })
  const worker = createHttpAuthorityClient({ issuer: server.url, key: b })
  const cred = await worker.callCredential({ mandate: child.token, audience: 'http://127.0.0.1:7500/mcp', tool: 'github.get_file', arguments: { path: '/README.md' } })
  await server.close()
  return cred.status
}
