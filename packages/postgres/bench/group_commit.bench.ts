/**
 * Group commit on Postgres: exchanges per second through an in-process Authority on a PostgresStore,
 * 64 in flight, with group commit (maxBatch 256) and without (maxBatch 1: one transaction, one chain
 * lock, one head signature and one commit per exchange), interleaved rounds, medians.
 *   node --conditions=@mandate/source --import tsx bench/group_commit.bench.ts
 */
import { Ed25519Key } from '@mandate/core'
import { createAuthority } from '@mandate/authority'
import { startPostgres } from '../../../scripts/test-services.mjs'
import { createPostgresStore, migrate } from '../src/index.js'

const AUD = 'http://127.0.0.1:7500/mcp'
const server = await startPostgres()
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const MS = Number(process.env.MS ?? 3000)
const results: Record<string, number[]> = { 'group commit (maxBatch 256)': [], 'no group commit (maxBatch 1)': [] }
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, maxBatch] of [['group commit (maxBatch 256)', 256], ['no group commit (maxBatch 1)', 1]] as const) {
      const db = await server.database()
      await migrate(db)
      const store = await createPostgresStore({ connectionString: db, maxBatch, max: 20 })
      const authority = await createAuthority({ issuer: 'http://127.0.0.1:9', store })
      const g = Ed25519Key.generate()
      const a = Ed25519Key.generate()
      await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
      await authority.registerAgent({ did: a.did, name: 'a' })
      const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['t.*'] }] })
      let done = 0
      const end = Date.now() + MS
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (Date.now() < end) {
          await authority.exchange(a, { kind: 'call', subjectToken: root.token, audience: AUD, tool: 't.x', arguments: { n: done } })
          done++
        }
      }))
      const v = await authority.audit.verify()
      if (!v.ok) throw new Error(`chain broken: ${v.reason}`)
      results[name]!.push(done / (MS / 1000))
      const st = store.groupStats
      console.log(`${name}: ${(done / (MS / 1000)).toFixed(0)}/s, ${(st.operations / st.groups).toFixed(1)} writes per transaction, chain lock held ${((st.lockHeldMs / st.groups)).toFixed(2)} ms per transaction`)
      await authority.close()
    }
  }
} finally {
  await server.destroy()
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
const [withGc, without] = Object.values(results).map(median)
for (const [name, xs] of Object.entries(results)) console.log(`${name}: median ${median(xs).toFixed(0)} exchanges/s (rounds: ${xs.map((x) => x.toFixed(0)).join(', ')})`)
console.log(`ratio: ${(withGc! / without!).toFixed(2)}x`)
