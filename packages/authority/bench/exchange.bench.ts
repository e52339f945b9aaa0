/**
 * Benchmarks (not tests). Run: pnpm --filter @mandate/authority bench
 *   1. in-process exchange (call credential) against its cryptographic floor, per store:
 *      - key-authenticated (`authority.exchange(key, …)`, `clientFor(key, { authentication: 'key' })`):
 *        floor = 1 raw node:crypto verify (the subject mandate) + 1 raw sign (the credential); with
 *        the subject cache (the default) a mandate presented again is not verified again, so the
 *        store's rows run twice: cache on (the default) and off ("subject verified every time")
 *        timed sequentially, 32 at a time (Promise.all), and one per event-loop turn (each its own
 *        audit group, so each pays its own signed audit head: the worst case)
 *      - signed (token endpoint with a client assertion + DPoP proof, made before the timer):
 *        floor = 3 raw verifies (assertion, proof, subject mandate) + 1 raw sign
 *      - signed through `clientFor(key)` (the client also signs its assertion and proof):
 *        floor = 3 raw verifies + 3 raw signs
 *      Other processes share the machine, so floors and paths are timed in CPU time of this process,
 *      in alternating blocks, and each ratio is the median of the per-round ratios (a slow patch
 *      hits both sides of a round).
 *   2. audit append rate (memory, SQLite FULL, SQLite NORMAL)
 *   3. HTTP exchange throughput at 32 concurrent connections (autocannon, server in a child process,
 *      assertions and DPoP proofs pre-generated since each is single use); BENCH_SKIP_HTTP=1 skips it
 */
import { spawn } from 'node:child_process'
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { createClientAssertion, createProof, Ed25519Key } from '@mandate/core'
import { createAuthority, MemoryStore, openSqliteStore, type AuthorityStore } from '../src/index.js'

const AUD = 'http://127.0.0.1:7500/mcp'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'], constraints: { amount: { type: 'max' as const, value: 500 } } }]
const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-'))

async function perOpAsync(n: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn()
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await fn()
  return Number(process.hrtime.bigint() - t) / 1e3 / n
}

async function setup(store: AuthorityStore, issuer = 'http://127.0.0.1:7400', subjectCache?: { maxEntries: number }) {
  const authority = await createAuthority({ issuer, store, checkpointEvery: 1000, ...(subjectCache ? { subjectCache } : {}) })
  const g = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
  return { authority, a, root: root.token }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y)
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2
}
// CPU time of this process (user + system), not wall time: other processes on the machine then
// inflate neither the floor nor the path (a descheduled block costs no CPU time)
const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}
function timeSync(n: number, fn: () => void): number {
  const t = cpuNow()
  for (let i = 0; i < n; i++) fn()
  return (cpuNow() - t) / n
}
async function timeAsync(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t = cpuNow()
  for (let i = 0; i < n; i++) await fn(i)
  return (cpuNow() - t) / n
}
const fmt = (us: number) => `${us.toFixed(1).padStart(7)} µs`

async function main(): Promise<void> {
  // raw node:crypto floors, on a message the size of a mandate's signing input
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const msg = Buffer.alloc(900, 7)
  const sig = sign(null, msg, privateKey)
  const floor1 = () => {
    verify(null, msg, publicKey, sig)
    sign(null, msg, privateKey)
  }
  const floor3 = () => {
    verify(null, msg, publicKey, sig)
    verify(null, msg, publicKey, sig)
    verify(null, msg, publicKey, sig)
    sign(null, msg, privateKey)
  }
  const floor33 = () => {
    floor3()
    sign(null, msg, privateKey)
    sign(null, msg, privateKey)
  }
  console.log(`floors: 1 verify + 1 sign ${timeSync(3000, floor1).toFixed(1)} µs; 3 verifies + 1 sign ${timeSync(1000, floor3).toFixed(1)} µs`)

  // 'subject verified every time': the subject cache off, so each exchange pays the verify its floor counts
  const variants = [['memory', new MemoryStore()], ['memory, subject verified every time', new MemoryStore()], ['sqlite NORMAL', openSqliteStore(join(dir, 'n.db'), { synchronous: 'NORMAL' })], ['sqlite FULL', openSqliteStore(join(dir, 'f.db'))]] as const
  for (const [name, store] of variants) {
    const { authority, a, root } = await setup(store, undefined, name.includes('every time') ? { maxEntries: 0 } : undefined)
    let amount = 0
    const call = () => ({ kind: 'call' as const, subjectToken: root, audience: AUD, tool: 'billing.refund', arguments: { amount: amount++ % 500 } })
    const form = () => ({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: root, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:mandate:token-type:call-credential', resource: AUD, tool: 'billing.refund', tool_arguments: JSON.stringify({ amount: amount++ % 500 }),
      client_id: a.did, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    })
    const client = authority.clientFor(a)
    const full = name === 'sqlite FULL'
    const rounds = full ? 8 : 15
    const block = full ? 40 : 150
    const r = { f1: [] as number[], f3: [] as number[], f33: [] as number[], key: [] as number[], key32: [] as number[], keyTurn: [] as number[], signed: [] as number[], client: [] as number[] }
    const q = { key: [] as number[], key32: [] as number[], keyTurn: [] as number[], signed: [] as number[], client: [] as number[] }
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
    for (let round = -1; round < rounds; round++) {
      // single-use assertions and proofs for this round, made outside the timed block
      const creds = Array.from({ length: block }, () => ({
        assertion: createClientAssertion(a, { clientId: a.did, audience: authority.issuer }),
        dpop: createProof(a, { method: 'POST', url: authority.endpoints.token }),
      }))
      const f1 = timeSync(block, floor1)
      const key = await timeAsync(block, () => authority.exchange(a, call()))
      const f1b = timeSync(block, floor1)
      const key32 = await timeAsync(Math.max(1, Math.round(block / 32)), () => Promise.all(Array.from({ length: 32 }, () => authority.exchange(a, call())))) / 32
      const keyTurn = await timeAsync(block, async () => {
        await turn()
        return authority.exchange(a, call())
      })
      const f3 = timeSync(block, floor3)
      const signed = await timeAsync(block, (i) => {
        const c = creds[i] as { assertion: string; dpop: string }
        return authority.token({ ...form(), client_assertion: c.assertion }, { dpop: c.dpop })
      })
      const f33 = timeSync(block, floor33)
      const viaClient = await timeAsync(block, () => client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: amount++ % 500 } }))
      if (round < 0) continue // warm-up
      r.f1.push((f1 + f1b) / 2)
      r.f3.push(f3)
      r.f33.push(f33)
      r.key.push(key)
      r.key32.push(key32)
      r.keyTurn.push(keyTurn)
      r.signed.push(signed)
      r.client.push(viaClient)
      q.key.push(key / ((f1 + f1b) / 2))
      q.key32.push(key32 / ((f1 + f1b) / 2))
      q.keyTurn.push(keyTurn / ((f1 + f1b) / 2))
      q.signed.push(signed / f3)
      q.client.push(viaClient / f33)
    }
    console.log(`in-process exchange [${name}] (median of ${rounds} rounds × ${block} calls):`)
    console.log(`  key-authenticated       ${fmt(median(r.key))} = ${median(q.key).toFixed(2)}× floor (1 verify + 1 sign   ${fmt(median(r.f1))}), sequential`)
    console.log(`  key-authenticated ×32   ${fmt(median(r.key32))} = ${median(q.key32).toFixed(2)}× floor, per exchange, 32 concurrent`)
    console.log(`  key-authenticated/turn  ${fmt(median(r.keyTurn))} = ${median(q.keyTurn).toFixed(2)}× floor, one exchange per event-loop turn (own signed audit head each)`)
    console.log(`  signed assertion+DPoP   ${fmt(median(r.signed))} = ${median(q.signed).toFixed(2)}× floor (3 verifies + 1 sign ${fmt(median(r.f3))})`)
    console.log(`  signed via clientFor()  ${fmt(median(r.client))} = ${median(q.client).toFixed(2)}× floor (3 verifies + 3 signs ${fmt(median(r.f33))}, the client signs 2)`)
    const append = await perOpAsync(full ? 500 : 5000, () => store.appendAudit({ time: Date.now(), type: 'call.report', fields: { txn: 't', agent: a.did, tool: 'billing.refund', args: 'x'.repeat(43) } }))
    console.log(`audit append [${name}]: ${(1e6 / append).toFixed(0)} records/s (${append.toFixed(1)} µs each)`)
    await authority.close()
  }
  if (process.env.BENCH_SKIP_HTTP) return void rmSync(dir, { recursive: true, force: true })

  // 3. HTTP throughput
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const issuer = `http://127.0.0.1:${port}`
  const db = join(dir, 'http.db')
  const { authority, a, root } = await setup(openSqliteStore(db), issuer)
  await authority.close()
  const cwd = fileURLToPath(new URL('..', import.meta.url))
  const child = spawn(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', 'test/fixtures/server-process.ts', db, String(port), issuer], { cwd, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => child.stdout?.on('data', (d: Buffer) => d.toString().includes('READY') && resolve()))
  const N = 6000
  const bodies: Array<{ body: string; dpop: string }> = []
  for (let i = 0; i < N + 200; i++) {
    bodies.push({
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: root, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:mandate:token-type:call-credential', resource: AUD, tool: 'billing.refund', tool_arguments: JSON.stringify({ amount: i % 500 }),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(a, { clientId: a.did, audience: issuer, lifetime: 300 }),
      }).toString(),
      dpop: createProof(a, { method: 'POST', url: `${issuer}/token` }),
    })
  }
  let next = 0
  const result = await autocannon({
    url: `${issuer}/token`, connections: 32, amount: N,
    requests: [{
      method: 'POST',
      setupRequest: (req) => {
        const b = bodies[next++] as { body: string; dpop: string }
        return { ...req, method: 'POST', body: b.body, headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: b.dpop } }
      },
    }],
  })
  console.log(`HTTP exchange (SQLite FULL, 32 connections, ${N} requests): ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}`)
  child.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}

await main()
