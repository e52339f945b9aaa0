import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createClientAssertion, createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, openSqliteStore } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

describe('signing keys', () => {
  it('are created on first start, persisted in the SQLite store, and rotated with an overlapping JWKS', async () => {
    const db = `${tmp.dir}/keys.db`
    const first = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(db) })
    const kid = first.jwks().keys[0]?.kid
    await first.close()
    const again = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(db) })
    expect(again.jwks().keys.map((k) => k.kid)).toEqual([kid])
    const r = await again.rotateSigningKey()
    expect(r.previous).toBe(kid)
    expect(again.jwks().keys.map((k) => k.kid)).toEqual([r.kid, kid])
    await again.close()
  })

  it('can live in a key file written with mode 0600; a group-readable file is refused', async () => {
    const keyFile = `${tmp.dir}/signing-keys.json`
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile })
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const kid = authority.jwks().keys[0]?.kid
    await authority.close()
    expect((await createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile })).jwks().keys[0]?.kid).toBe(kid)
    const loose = `${tmp.dir}/loose.json`
    writeFileSync(loose, '{"keys":[]}')
    chmodSync(loose, 0o644)
    await expect(createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile: loose })).rejects.toMatchObject({ code: 'KEY_INVALID' })
  })

  it('saving the key file never follows a symlink planted at a predictable temporary name (the old one was <file>.<pid>.tmp)', async () => {
    const keyFile = `${tmp.dir}/planted.json`
    const loot = `${tmp.dir}/loot`
    writeFileSync(loot, '')
    chmodSync(loot, 0o666)
    // the name the previous implementation used
    symlinkSync(loot, `${keyFile}.${process.pid}.tmp`)
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile })
    await authority.rotateSigningKey()
    await authority.close()
    // nothing was written through the planted link, and the key file is a regular 0600 file
    expect(readFileSync(loot, 'utf8')).toBe('')
    expect(lstatSync(keyFile).isSymbolicLink()).toBe(false)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    // no temporary file is left behind (the planted link is the only extra entry)
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('planted.json.') && f.endsWith('.tmp'))).toEqual([`planted.json.${process.pid}.tmp`])
  })

  it('more than 64 rotations: the audit chain still verifies, before and after a restart; the JWKS lists the newest keys first', async () => {
    const db = `${tmp.dir}/many-keys.db`
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(db) })
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    let last = ''
    const kids: string[] = []
    for (let i = 0; i < 70; i++) {
      last = (await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })).token
      kids.push((await authority.rotateSigningKey()).kid)
    }
    expect(await authority.audit.verify()).toMatchObject({ ok: true })
    // the mandate signed by the newest retired key still exchanges
    expect((await authority.clientFor(a).callCredential({ mandate: last, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })).status).toBe('issued')
    expect(authority.jwks().keys.slice(0, 3).map((k) => k.kid)).toEqual([kids[69], kids[68], kids[67]])
    await authority.close()
    const again = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(db) })
    await again.registerAgent({ did: Ed25519Key.generate().did, name: 'after-restart' })
    expect(await again.audit.verify()).toMatchObject({ ok: true })
    expect(await again.audit.query({ type: 'audit.unsealed' })).toEqual([])
    await again.close()
  })

  it('a key file path that is a directory is refused as such (not a raw EISDIR, not "chmod 600")', async () => {
    const dir = `${tmp.dir}/keys-dir`
    mkdirSync(dir, { mode: 0o700 })
    await expect(createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile: dir })).rejects.toMatchObject({ code: 'KEY_INVALID', message: expect.stringMatching(/not a regular file/) })
  })

  it('lost signing keys are a refusal at start, not a silent new key, once the store holds an audit log', async () => {
    const keyFile = `${tmp.dir}/lost-keys.json`
    const db = `${tmp.dir}/lost-keys.db`
    const first = await createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile, store: openSqliteStore(db) })
    await first.registerAgent({ did: Ed25519Key.generate().did, name: 'a' })
    await first.close()
    for (const lose of [() => rmSync(keyFile), () => writeFileSync(keyFile, '{"keys":[]}', { mode: 0o600 })]) {
      lose()
      await expect(createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile, store: openSqliteStore(db) })).rejects.toMatchObject({ code: 'STORE_ERROR', message: expect.stringMatching(/signing keys are missing/) })
    }
    // a fresh store still gets its first key
    const fresh = await createAuthority({ issuer: 'http://127.0.0.1:7400', keyFile: `${tmp.dir}/fresh-keys.json`, store: openSqliteStore(`${tmp.dir}/fresh.db`) })
    expect(fresh.jwks().keys).toHaveLength(1)
    await fresh.close()
  })

  it('mandates signed before a rotation keep verifying during the overlap', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400' })
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    const root = await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })
    await authority.rotateSigningKey()
    const res = await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })
    expect(res.status).toBe('issued')
    await authority.close()
  })
})

describe('admin JSON endpoints', () => {
  it('register, list, disable agents; admin revocations; only admins', async () => {
    const admin = Ed25519Key.generate()
    const server = await createAuthorityServer({ port: 0 })
    await server.authority.registerAgent({ did: admin.did, name: 'root-admin', role: 'admin' })
    const auth = (k: Ed25519Key) => ({ authorization: `MandateAssertion ${createClientAssertion(k, { clientId: k.did, audience: server.url })}`, 'content-type': 'application/json' })
    const agent = Ed25519Key.generate()
    const reg = await fetch(`${server.url}/admin/agents`, { method: 'POST', headers: auth(admin), body: JSON.stringify({ did: agent.did, name: 'worker', owner: 'alice', role: 'agent', metadata: { team: 'billing' } }) })
    expect(reg.status).toBe(201)
    const dup = await fetch(`${server.url}/admin/agents`, { method: 'POST', headers: auth(admin), body: `{"did":"${agent.did}","did":"x","name":"w"}` })
    expect(await dup.json()).toMatchObject({ error: 'invalid_request' })
    const notAdmin = await fetch(`${server.url}/admin/agents`, { headers: auth(agent) })
    expect(notAdmin.status).toBe(403)
    const replayHeaders = auth(admin)
    expect((await fetch(`${server.url}/admin/agents`, { headers: replayHeaders })).status).toBe(200)
    expect((await fetch(`${server.url}/admin/agents`, { headers: replayHeaders })).status).toBe(401) // assertions are single use
    const rev = await fetch(`${server.url}/admin/revocations`, { method: 'POST', headers: auth(admin), body: JSON.stringify({ txn: 'task-1', reason: 'incident', preemptive: true }) })
    expect(await rev.json()).toMatchObject({ preemptive: true, revoked: [{ kind: 'task', id: 'task-1' }] })
    const dis = await fetch(`${server.url}/admin/agents/${encodeURIComponent(agent.did)}/disable`, { method: 'POST', headers: auth(admin) })
    expect(await dis.json()).toMatchObject({ did: agent.did, disabled: true })
    // a disabled agent can no longer authenticate
    const client = createHttpAuthorityClient({ issuer: server.url, key: agent })
    await expect(client.reportCall?.({ mandateId: 'x'.repeat(22), txn: 't', tool: 'a.b', audience: AUD, argumentsDigest: 'd', decision: 'allowed', actorChain: [agent.did], subject: 's' })).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    const verify = await fetch(`${server.url}/audit/verify`, { headers: auth(admin) })
    expect(await verify.json()).toMatchObject({ ok: true })
    const exp = await fetch(`${server.url}/audit/export`, { headers: auth(admin) })
    const lines = (await exp.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string })
    expect(lines.map((l) => l.type)).toEqual(expect.arrayContaining(['agent.registered', 'revocation', 'agent.disabled']))
    await server.close()
  })
})
