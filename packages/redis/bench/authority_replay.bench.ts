// What a shared replay store costs the Authority: call-credential exchanges through the token
// endpoint (in-process `authority.token`, fresh client assertion + DPoP proof each, so two
// single-use claims per exchange) with the default in-memory single use vs Redis vs Postgres.
// Reports throughput at 16 in flight and CPU per exchange, interleaved rounds, medians.
// Run: node --conditions=@mandate/source --import tsx bench/authority_replay.bench.ts
import { CALL_CREDENTIAL_TOKEN_TYPE, createAuthority, type Authority } from '@mandate/authority'
import { createClientAssertion, createProof, Ed25519Key, type ReplayStore } from '@mandate/core'
import { hasPostgres, hasRedis, startPostgres, startRedis } from '../../../scripts/test-services.mjs'
import { createPostgresReplayStore } from '../../postgres/src/replay.js'
import { createRedisReplayStore } from '../src/index.js'

if (!hasRedis() || !hasPostgres()) {
  console.log('skipped: needs redis-server and PostgreSQL installed')
  process.exit(0)
}
const ROUNDS = Number(process.env.ROUNDS ?? 5)
const N = Number(process.env.N ?? 1500)
const IN_FLIGHT = 16
const ISSUER = 'https://authority.example'
const AUD = 'https://tools.example/mcp'
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function setup(replay: ReplayStore | undefined) {
  const authority = await createAuthority({ issuer: ISSUER, ...(replay ? { replay } : {}) })
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: agent.did, name: 'worker' })
  const root = (await authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 3600 })).token
  return { authority, agent, root }
}

async function run({ authority, agent, root }: { authority: Authority; agent: Ed25519Key; root: string }): Promise<{ perSec: number; cpuUs: number }> {
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next++ < N) {
      const form = {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: root, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: CALL_CREDENTIAL_TOKEN_TYPE, resource: AUD, tool: 'billing.refund', tool_arguments: '{"amount":1}',
        client_id: agent.did, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: createClientAssertion(agent, { clientId: agent.did, audience: ISSUER }),
      }
      await authority.token(form, { dpop: createProof(agent, { method: 'POST', url: authority.endpoints.token }) })
    }
  }))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { perSec: N / (ms / 1000), cpuUs: (cpu.user + cpu.system) / N }
}

const redis = await startRedis()
const pg = await startPostgres()
const redisStore = createRedisReplayStore({ url: redis.url })
const pgStore = await createPostgresReplayStore({ connectionString: await pg.database(), max: 10, timeoutMs: 10_000 })
const variants = { memory: await setup(undefined), redis: await setup(redisStore), postgres: await setup(pgStore) }
const out: Record<string, { perSec: number[]; cpuUs: number[] }> = {}
try {
  for (const v of Object.values(variants)) await run(v) // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, v] of Object.entries(variants)) {
      const res = await run(v)
      ;(out[name] ??= { perSec: [], cpuUs: [] }).perSec.push(res.perSec)
      out[name]!.cpuUs.push(res.cpuUs)
    }
  }
  const base = median(out.memory!.cpuUs)
  console.log(`in-process call-credential exchanges, ${N} per round, ${IN_FLIGHT} in flight, ${ROUNDS} rounds, medians (CPU includes the client's signing)`)
  for (const [name, r] of Object.entries(out)) {
    console.log(`${name.padEnd(9)} ${Math.round(median(r.perSec))} exchanges/s   CPU ${Math.round(median(r.cpuUs))} µs/exchange (${(median(r.cpuUs) / base).toFixed(2)}× memory)`)
  }
} finally {
  for (const v of Object.values(variants)) await v.authority.close()
  await redisStore.close()
  await pgStore.close()
  await redis.stop()
  await pg.destroy()
}
