/**
 * Durability: a server process on a SQLite file is SIGKILLed in the middle of a burst of exchanges,
 * restarted on the same file; the audit chain verifies and every exchange answered 200 is in it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createClientAssertion, createProof, decodeMandateUnverified, Ed25519Key } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority, openSqliteStore } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const tmp = tempDir()
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  tmp.cleanup()
})

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

function exited(c: ChildProcess): Promise<void> {
  return c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()))
}

function startChild(db: string, port: number, issuer: string): Promise<ChildProcess> {
  const cwd = fileURLToPath(new URL('..', import.meta.url))
  const child = spawn(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', 'test/fixtures/server-process.ts', db, String(port), issuer], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('READY')) resolve(child)
    })
    child.stderr?.on('data', (d: Buffer) => void (err += d.toString()))
    child.once('exit', (code) => reject(new Error(`server exited early (${code}): ${err.slice(0, 500)}`)))
  })
}

describe('durability on SIGKILL', () => {
  it('every exchange answered 200 before the kill is in the verified audit chain after restart', async () => {
    const db = `${tmp.dir}/authority.db`
    const port = await freePort()
    const issuer = `http://127.0.0.1:${port}`
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    const b = Ed25519Key.generate()
    const setup = await createAuthority({ issuer, store: openSqliteStore(db) })
    await setup.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await setup.registerAgent({ did: a.did, name: 'a' })
    await setup.registerAgent({ did: b.did, name: 'b' })
    const root = (await setup.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })).token
    await setup.close()

    let child = await startChild(db, port, issuer)
    const answered: string[] = []
    let failures = 0
    const exchange = async (i: number): Promise<void> => {
      const body = new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: root, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:mandate:token-type:call-credential', resource: AUD, tool: 'billing.refund', tool_arguments: JSON.stringify({ amount: i % 500 }),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(a, { clientId: a.did, audience: issuer }),
      })
      try {
        const res = await fetch(`${issuer}/token`, { method: 'POST', body, headers: { dpop: createProof(a, { method: 'POST', url: `${issuer}/token` }) } })
        if (res.status === 200) answered.push(decodeMandateUnverified(((await res.json()) as { access_token: string }).access_token).payload.jti as string)
        else failures++
      } catch {
        failures++
      }
    }
    const burst: Promise<void>[] = []
    let killed = false
    for (let i = 0; i < 600; i++) {
      burst.push(exchange(i))
      if (i % 32 === 31) await Promise.race([Promise.all(burst.slice(-32)), new Promise((r) => setTimeout(r, 20))])
      if (!killed && answered.length >= 100) {
        child.kill('SIGKILL')
        killed = true
      }
    }
    await Promise.all(burst)
    expect(killed).toBe(true)
    expect(answered.length).toBeGreaterThanOrEqual(100)
    expect(failures).toBeGreaterThan(0) // the kill really landed mid-burst
    await exited(child)

    child = await startChild(db, port, issuer)
    const after = await fetch(`${issuer}/jwks`)
    expect(after.status).toBe(200)
    child.kill('SIGTERM')
    await exited(child)

    const authority = await createAuthority({ issuer, store: openSqliteStore(db) })
    const verification = await authority.audit.verify()
    expect(verification).toMatchObject({ ok: true })
    const exchanged = new Set((await authority.audit.query({ type: 'exchange', limit: 10_000 })).map((r) => r.fields.jti))
    for (const jti of answered) expect(exchanged.has(jti)).toBe(true)
    for (const jti of answered) expect(await authority.store.getMandate(jti)).toBeDefined()
    await authority.close()
  }, 90_000)
})
