/**
 * Benchmarks (not tests). Run: pnpm --filter @mandate/authority bench
 *   1. in-process exchange vs the floor of one raw node:crypto verify + one raw sign
 *   2. audit append rate (memory, SQLite FULL, SQLite NORMAL)
 *   3. HTTP exchange throughput at 32 concurrent connections (autocannon, server in a child process,
 *      assertions and DPoP proofs pre-generated since each is single use)
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

function perOp(n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(200, n); i++) fn()
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn()
  return Number(process.hrtime.bigint() - t) / 1e3 / n
}
async function perOpAsync(n: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn()
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await fn()
  return Number(process.hrtime.bigint() - t) / 1e3 / n
}

async function setup(store: AuthorityStore, issuer = 'http://127.0.0.1:7400') {
  const authority = await createAuthority({ issuer, store, checkpointEvery: 1000 })
  const g = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
  return { authority, a, root: root.token }
}

async function main(): Promise<void> {
  // 1. floor
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const msg = Buffer.alloc(900, 7)
  const sig = sign(null, msg, privateKey)
  const floor = perOp(5000, () => {
    verify(null, msg, publicKey, sig)
    sign(null, msg, privateKey)
  })
  console.log(`floor (1 raw verify + 1 raw sign): ${floor.toFixed(1)} µs`)

  for (const [name, store] of [['memory', new MemoryStore()], ['sqlite NORMAL', openSqliteStore(join(dir, 'n.db'), { synchronous: 'NORMAL' })], ['sqlite FULL', openSqliteStore(join(dir, 'f.db'))]] as const) {
    const { authority, a, root } = await setup(store)
    let i = 0
    const keyPath = await perOpAsync(name === 'sqlite FULL' ? 500 : 3000, () => authority.exchange(a, { kind: 'call', subjectToken: root, audience: AUD, tool: 'billing.refund', arguments: { amount: i++ % 500 } }))
    const client = authority.clientFor(a)
    const signedPath = await perOpAsync(name === 'sqlite FULL' ? 500 : 2000, () => client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: i++ % 500 } }))
    console.log(`in-process exchange [${name}]: key-authenticated ${keyPath.toFixed(1)} µs (${(keyPath / floor).toFixed(2)}× floor); signed assertion+DPoP path ${signedPath.toFixed(1)} µs (${(signedPath / floor).toFixed(2)}× floor)`)
    const append = await perOpAsync(name === 'sqlite FULL' ? 500 : 5000, () => store.appendAudit({ time: Date.now(), type: 'call.report', fields: { txn: 't', agent: a.did, tool: 'billing.refund', args: 'x'.repeat(43) } }))
    console.log(`audit append [${name}]: ${(1e6 / append).toFixed(0)} records/s (${append.toFixed(1)} µs each)`)
    await authority.close()
  }

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
