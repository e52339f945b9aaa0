// Two Authority instances (think: two replicas behind a load balancer) on one Postgres database:
// a mandate granted on one is exchanged on the other, a revocation on one is refused by the other,
// and the one audit chain verifies.
// Run: MANDATE_EXAMPLE_POSTGRES_URL=postgres://user@127.0.0.1:5432/mandate node examples/two_instances.mjs
import { createAuthority } from '@mandate/authority'
import { Ed25519Key } from '@mandate/core'
import { createPostgresStore, migrate } from '@mandate/postgres'

const url = process.env.MANDATE_EXAMPLE_POSTGRES_URL
if (!url) {
  console.log('skipped: set MANDATE_EXAMPLE_POSTGRES_URL=postgres://user@host:port/db to run this example against a Postgres')
  process.exit(0)
}

const ISSUER = 'https://authority.example'
const AUD = 'https://tools.example/mcp'
const { version, applied } = await migrate(url) // `mandate authority migrate`: idempotent
console.log(`schema version ${version} (applied now: ${applied.join(', ') || 'none'})`)

// the same issuer and database for every instance; each has its own pool and LISTEN connection
const [a, b] = await Promise.all([1, 2].map(async () => createAuthority({ issuer: ISSUER, store: await createPostgresStore({ connectionString: url }) })))

const host = Ed25519Key.generate()
const agent = Ed25519Key.generate()
await a.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
await a.registerAgent({ did: agent.did, name: 'billing-agent' })
const mandate = await a.grant({ grantor: host.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 600 })

// granted on A, exchanged on B
const call = await b.exchange(agent, { kind: 'call', subjectToken: mandate.token, audience: AUD, tool: 'billing.get_invoice', arguments: { id: 'inv_1' } })
console.log(`B issued a call credential under A's mandate: ${call.claims.jti}`)

// revoked on A, refused by B at once
await a.revoke({ txn: mandate.claims.txn }, { reason: 'example' })
try {
  await b.exchange(agent, { kind: 'call', subjectToken: mandate.token, audience: AUD, tool: 'billing.get_invoice', arguments: { id: 'inv_2' } })
  throw new Error('B accepted a revoked mandate')
} catch (err) {
  if (err.code !== 'REVOKED') throw err
  console.log('B refused the task revoked on A: REVOKED')
}

const v = await b.audit.verify()
if (!v.ok) throw new Error(`audit chain broken: ${v.reason}`)
console.log(`one audit chain, ${v.count} records, verified`)
await Promise.all([a.close(), b.close()])
