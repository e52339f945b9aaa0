/**
 * Signed heads kept outside the database: published to a witness file and a webhook (real HTTP
 * server on 127.0.0.1), exported over HTTP, and used by verify to detect what the database alone
 * cannot (a log wiped or rolled back together with its heads). Also the streamed JSONL export.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createClientAssertion, Ed25519Key } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, latestCheckpointIn, openSqliteStore, witnessCheckpointsIn, type SqliteStore } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const tmp = tempDir()
const servers: Server[] = []
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
  tmp.cleanup()
})

async function witnessServer(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<string> {
  const s = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => void (body += d.toString()))
    req.on('end', () => handler(req, res, body))
  })
  servers.push(s)
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/heads`
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function busy(authority: Awaited<ReturnType<typeof createAuthority>>, calls: number): Promise<void> {
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
  const c = authority.clientFor(a, { authentication: 'key' })
  await Promise.all(Array.from({ length: calls }, (_, i) => c.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: i } })))
}

/**
 * A log written by two Authority runs publishing to one witness file: one record, a copy of the
 * database saved (what an attacker would put back), then `calls` more calls.
 */
async function witnessedHistory(name: string, calls: number) {
  const issuer = 'http://127.0.0.1:7400'
  const db = `${tmp.dir}/${name}.db`
  const saved = `${tmp.dir}/${name}-saved.db`
  const witness = `${tmp.dir}/${name}-witness.jsonl`
  const first = await createAuthority({ issuer, store: openSqliteStore(db), auditWitness: { file: witness } })
  await first.registerAgent({ did: Ed25519Key.generate().did, name: 'one' })
  await first.close()
  copyFileSync(db, saved)
  const second = await createAuthority({ issuer, store: openSqliteStore(db), auditWitness: { file: witness } })
  await busy(second, calls)
  await second.close()
  return { issuer, db, saved, witness }
}

describe('audit witness', () => {
  it('appends every signed head to a witness file; verify against it detects a wiped log', async () => {
    const db = `${tmp.dir}/w.db`
    const witness = `${tmp.dir}/witness.jsonl`
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(db), auditWitness: { file: witness } })
    await busy(authority, 10)
    await authority.close() // publishes what is pending
    const lines = readFileSync(witness, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; hash: string; jws: string })
    expect(lines.length).toBeGreaterThan(0)
    // heads only grow; the newest is the whole log's
    expect(lines.map((l) => l.seq)).toEqual([...lines.map((l) => l.seq)].sort((x, y) => x - y))
    expect(lines[lines.length - 1]!.seq).toBe(13)

    const reopened = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(db) })
    const checkpoint = latestCheckpointIn(readFileSync(witness, 'utf8'))
    expect(await reopened.audit.verify({ checkpoint })).toMatchObject({ ok: true, checkpoint: { seq: 13 } })
    const raw = (reopened.store as SqliteStore).db
    raw.prepare('DELETE FROM audit').run()
    raw.prepare('DELETE FROM audit_head').run()
    expect(await reopened.audit.verify()).toMatchObject({ ok: true, count: 0 })
    expect(await reopened.audit.verify({ checkpoint })).toMatchObject({ ok: false, code: 'AUDIT_BROKEN', kind: 'truncated', brokenAt: 1 })
    await reopened.close()
  })

  it('a rollback the log has since grown past: the head a later witness line goes back from is checked, and fails', async () => {
    const { issuer, db, saved, witness } = await witnessedHistory('rb', 4)
    const witnessed = latestCheckpointIn(readFileSync(witness, 'utf8'))
    // the attacker puts the saved copy back and the log grows past the witnessed head again, under an
    // Authority that publishes to another witness (the first one would have caught it at start: below)
    copyFileSync(saved, db)
    const later = `${tmp.dir}/rb-later.jsonl`
    const third = await createAuthority({ issuer, store: openSqliteStore(db), auditWitness: { file: later } })
    await busy(third, 6)
    await third.close()
    const text = readFileSync(witness, 'utf8') + readFileSync(later, 'utf8')
    const heads = witnessCheckpointsIn(text)
    expect(heads).toContain(witnessed)
    const reopened = await createAuthority({ issuer, store: openSqliteStore(db) })
    // the newest head alone is contained: the rollback is not seen
    expect(await reopened.audit.verify({ checkpoint: latestCheckpointIn(text) })).toMatchObject({ ok: true })
    expect(await reopened.audit.verify({ checkpoint: heads })).toMatchObject({ ok: false, code: 'AUDIT_BROKEN', kind: 'checkpoint_mismatch' })
    await reopened.close()
  })

  it('an Authority starting on a log behind its witness records so before anything else (rolled back, or rolled back and rewritten)', async () => {
    const { issuer, db, saved, witness } = await witnessedHistory('behind', 3)
    const top = JSON.parse(readFileSync(witness, 'utf8').trimEnd().split('\n').pop()!) as { seq: number }

    // rolled back: the log ends before the witness's newest head
    copyFileSync(saved, db)
    const behind = await createAuthority({ issuer, store: openSqliteStore(db), auditWitness: { file: witness } })
    const [marker] = await behind.audit.query({ type: 'audit.unsealed' })
    expect(marker?.fields.reason).toMatch(new RegExp(`records 2\\.\\.${top.seq} are missing: the log is behind the witness's signed head`))
    expect(await behind.audit.verify()).toMatchObject({ ok: false, kind: 'foreign_write' })
    await behind.close()

    // rolled back and grown past the witnessed seq elsewhere: the record there is not the witnessed one
    copyFileSync(saved, db)
    const elsewhere = await createAuthority({ issuer, store: openSqliteStore(db) })
    await busy(elsewhere, 5)
    await elsewhere.close()
    const rewritten = await createAuthority({ issuer, store: openSqliteStore(db), auditWitness: { file: witness } })
    const [mark] = await rewritten.audit.query({ type: 'audit.unsealed' })
    expect(mark?.fields.reason).toBe(`record ${top.seq} is not the record the witness's signed head covers (the log was rolled back and written again)`)
    await rewritten.close()

    // two Authorities on one store sharing one witness file: the second to start finds the first's heads in the store
    const shared = `${tmp.dir}/behind-shared.db`
    const ws = `${tmp.dir}/behind-shared.jsonl`
    const one = await createAuthority({ issuer, store: openSqliteStore(shared), auditWitness: { file: ws } })
    await busy(one, 2)
    const oneHead = (await one.audit.checkpoint())!.seq
    await until(() => existsSync(ws) && readFileSync(ws, 'utf8').includes(`"seq":${oneHead},`))
    const two = await createAuthority({ issuer, store: openSqliteStore(shared), auditWitness: { file: ws } })
    await two.registerAgent({ did: Ed25519Key.generate().did, name: 'two' })
    expect(await two.audit.query({ type: 'audit.unsealed' })).toEqual([])
    await two.close()
    await one.close()

    // the genuine log with its own witness: nothing to record
    const fresh = `${tmp.dir}/behind-fresh.db`
    const w2 = `${tmp.dir}/behind-fresh.jsonl`
    const a = await createAuthority({ issuer, store: openSqliteStore(fresh), auditWitness: { file: w2 } })
    await busy(a, 2)
    await a.close()
    const b = await createAuthority({ issuer, store: openSqliteStore(fresh), auditWitness: { file: w2 } })
    expect(await b.audit.query({ type: 'audit.unsealed' })).toEqual([])
    expect(await b.audit.verify({ checkpoint: witnessCheckpointsIn(readFileSync(w2, 'utf8')) })).toMatchObject({ ok: true })
    await b.close()
  })

  it('POSTs signed heads to a webhook, retries after failures, and never holds up an exchange', async () => {
    const received: Array<{ seq: number; jws: string }> = []
    let fail = 2
    const url = await witnessServer((req, res, body) => {
      if (fail-- > 0) {
        res.writeHead(503).end()
        return
      }
      expect(req.headers['content-type']).toBe('application/json')
      received.push(JSON.parse(body) as { seq: number; jws: string })
      res.writeHead(204).end()
    })
    const errors: string[] = []
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', auditWitness: { webhook: { url }, onError: (e) => void errors.push(e.message) } })
    await busy(authority, 5)
    await until(() => received.some((h) => h.seq === 8))
    expect(errors.slice(0, 2)).toEqual(['witness answered HTTP 503', 'witness answered HTTP 503'])
    expect(await authority.audit.verify({ checkpoint: received[received.length - 1]!.jws })).toMatchObject({ ok: true, checkpoint: { seq: 8 } })
    await authority.close()

    // a witness that never answers: exchanges still complete (publication is never awaited)
    const hang = await witnessServer(() => undefined)
    const stuck = await createAuthority({ issuer: 'http://127.0.0.1:7400', auditWitness: { webhook: { url: hang, timeoutMs: 60_000 }, onError: () => undefined } })
    await busy(stuck, 5)
    expect((await stuck.audit.verify()).ok).toBe(true)
    await stuck.close()
  })

  it('refuses a malformed witness option before creating anything', async () => {
    await expect(createAuthority({ issuer: 'http://127.0.0.1:7400', auditWitness: { webhook: { url: 'ftp://x' } } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    await expect(createAuthority({ issuer: 'http://127.0.0.1:7400', auditWitness: { fil: 'x' } as never })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
  })
})

describe('audit over HTTP', () => {
  it('exports JSONL streamed, naming the signed head it stops at; serves the signed head; verifies against a posted checkpoint', async () => {
    const server = await createAuthorityServer({ authority: { store: openSqliteStore(`${tmp.dir}/http.db`) } })
    const admin = Ed25519Key.generate()
    await server.authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
    await server.authority.store.appendAuditBatch(Array.from({ length: 3000 }, (_, i) => ({ time: i, type: 'call.report' as const, fields: { n: i, pad: 'y'.repeat(200) } })))
    const issuer = server.authority.issuer
    const auth = () => ({ authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: issuer })}` })

    const head = await fetch(`${server.url}/audit/checkpoint`, { headers: auth() })
    expect(head.status).toBe(200)
    const saved = (await head.json()) as { seq: number; jws: string }
    expect(saved.seq).toBe(3001)

    const res = await fetch(`${server.url}/audit/export`, { headers: auth() })
    expect(res.headers.get('content-type')).toBe('application/x-ndjson')
    expect(res.headers.get('mandate-audit-head-seq')).toBe('3001')
    expect(res.headers.get('mandate-audit-checkpoint')).toBe(saved.jws)
    // records appended while the export runs are not part of it: it stops at the head it named
    await server.authority.registerAgent({ did: Ed25519Key.generate().did, name: 'late' })
    const lines = (await res.text()).trimEnd().split('\n')
    expect(lines).toHaveLength(3001)
    expect((JSON.parse(lines[3000]!) as { seq: number }).seq).toBe(3001)

    const post = (body: unknown) => fetch(`${server.url}/audit/verify`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) })
    expect(await (await post({ checkpoint: saved.jws })).json()).toMatchObject({ ok: true, count: 3002, checkpoint: { seq: 3001 } })
    expect(await (await post({ checkpoint: [saved.jws, saved.jws] })).json()).toMatchObject({ ok: true, checkpoint: { seq: 3001 } })
    expect((await post({ checkpoint: Array.from({ length: 101 }, () => saved.jws) })).status).toBe(400)
    expect((await post({ checkpoint: [] })).status).toBe(400)
    expect((await post({ checkpoint: [saved.jws, 7] })).status).toBe(400)
    expect((await post({ checkpoint: saved.jws, extra: 1 })).status).toBe(400)
    expect((await post({})).status).toBe(400)
    expect((await fetch(`${server.url}/audit/checkpoint`)).status).toBe(401)
    expect((await fetch(`${server.url}/audit/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ checkpoint: saved.jws }) })).status).toBe(401)
    expect((await fetch(`${server.url}/audit/export`)).status).toBe(401)
    await server.close()
    await server.authority.close()
  })
})
