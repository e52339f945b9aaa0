import { createGuard, createProof, Ed25519Key } from '@mandate/core'
import { createAuthority, MemoryStore } from '@mandate/authority'

export async function embedded(): Promise<string> {
  const authority = await createAuthority({
    issuer: 'http://127.0.0.1:7400',
    store: new MemoryStore(), // or openSqliteStore('mandate.db')
    policy: [{ effect: 'deny', tool: 'billing.delete' }],
  })
  const host = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agent.did, name: 'orchestrator', owner: 'alice' })

  const { token } = await authority.grant({
    grantor: host.did, subject: 'alice@example.com', agent: agent.did, purpose: 'triage billing anomalies',
    audiences: ['http://127.0.0.1:7500/mcp'],
    tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 500 } } }],
    expiresIn: 3600, maxDepth: 2,
  })

  const args = { amount: 42 }
  const res = await authority.clientFor(agent).callCredential({ mandate: token, audience: 'http://127.0.0.1:7500/mcp', tool: 'billing.refund', arguments: args })
  if (res.status !== 'issued') throw new Error('approval required')

  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: 'http://127.0.0.1:7500/mcp', revocation: authority.revocationSource() })
  const proof = createProof(agent, { audience: 'http://127.0.0.1:7500/mcp', accessToken: res.token, tool: 'billing.refund', arguments: args })
  const call = await guard.verifyToolCall({ mandate: res.token, proof, tool: 'billing.refund', arguments: args })
  await authority.close()
  return `${call.actor} may call ${call.tool} for ${call.subject}`
}
