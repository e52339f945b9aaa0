/**
 * Options of the HTTP entry points are checked before anything is bound, opened or created: a
 * misspelt option is CONFIG_INVALID (never a server silently running without it), and
 * startAuthorityServer creates no SQLite file for a server that cannot start. A damaged signing-key
 * file or row is a typed STORE_ERROR naming the file, never a raw SyntaxError quoting the keys.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from '../src/store/sqlite_driver.js'
import { MandateError } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority } from '../src/authority.js'
import { createAuthorityServer } from '../src/http/server.js'
import { startAuthorityServer } from '../src/main.js'
import { openSqliteStore } from '../src/store/sqlite.js'
import { tempDir } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())
const ISSUER = 'http://127.0.0.1:7400'

async function refusal(p: Promise<unknown>): Promise<MandateError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), String(err)).toBe(true)
  return err as MandateError
}

describe('createAuthorityServer options', () => {
  it('refuses an unknown top-level option (authorty: { policy }) instead of serving without the policy', async () => {
    const err = await refusal(createAuthorityServer({ authorty: { policy: [{ effect: 'deny', tool: '*' }] } } as never))
    expect(err).toMatchObject({ code: 'CONFIG_INVALID', detail: { option: 'authorty' } })
    expect(err.message).toContain('known: port, hostname, extend, logger, metrics, drainTimeoutMs, requestTimeoutMs, authority')
  })

  it('refuses an unknown option with an existing Authority, ill-typed server options, and unknown Authority options before binding', async () => {
    const authority = await createAuthority({ issuer: ISSUER })
    try {
      expect(await refusal(createAuthorityServer(authority, { prot: 0 } as never))).toMatchObject({ code: 'CONFIG_INVALID', detail: { option: 'prot' } })
      // `authority` only makes sense when the server creates the Authority
      expect(await refusal(createAuthorityServer(authority, { authority: {} } as never))).toMatchObject({ code: 'CONFIG_INVALID' })
      expect(await refusal(createAuthorityServer(authority, { port: 70_000 }))).toMatchObject({ code: 'CONFIG_INVALID' })
      expect(await refusal(createAuthorityServer(authority, { extend: 'routes' } as never))).toMatchObject({ code: 'CONFIG_INVALID' })
    } finally {
      await authority.close()
    }
    const keyFile = join(tmp.dir, 'bootstrap-keys.json')
    expect(await refusal(createAuthorityServer({ authority: { keyFile, polcy: [] } as never }))).toMatchObject({ code: 'CONFIG_INVALID', detail: { option: 'polcy' } })
    expect(await refusal(createAuthorityServer({ authority: { keyFile, policy: [{ effect: 'deny', agnet: 'x' }] as never } }))).toMatchObject({ code: 'POLICY_INVALID' })
    expect(existsSync(keyFile)).toBe(false)
  })
})

describe('startAuthorityServer options', () => {
  it('checks every option before the SQLite file is opened: nothing is created for a server that cannot start', async () => {
    const dir = join(tmp.dir, 'start')
    const dbPath = join(dir, 'authority.db')
    writeFileSync(join(tmp.dir, 'placeholder'), '') // tmp.dir exists; `dir` does not
    const cases: Array<[Record<string, unknown>, string, string?]> = [
      [{ polcy: [{ effect: 'deny', tool: '*' }] }, 'CONFIG_INVALID', 'polcy'],
      [{ authority: { policy: [] } }, 'CONFIG_INVALID', 'authority'],
      [{ store: openSqliteStore(':memory:') }, 'CONFIG_INVALID', 'store'],
      [{ policy: [{ effect: 'allow', agnet: 'did:key:z6Mk' }] }, 'POLICY_INVALID'],
      [{ sqlite: { synchronus: 'OFF' } }, 'CONFIG_INVALID', 'synchronus'],
      [{ sqlite: { synchronous: 'OFF' } }, 'CONFIG_INVALID'],
      [{ auditWitness: { fil: join(dir, 'w.jsonl') } }, 'CONFIG_INVALID', 'fil'],
      [{ maxCallLifetime: 3600 }, 'CONFIG_INVALID'],
      [{ port: -1 }, 'CONFIG_INVALID'],
      [{ issuer: 'ftp://example' }, 'CONFIG_INVALID'],
    ]
    for (const [extra, code, option] of cases) {
      const err = await refusal(startAuthorityServer({ dbPath: join(tmp.dir, 'never.db'), ...extra } as never))
      expect(err.code, JSON.stringify(Object.keys(extra))).toBe(code)
      if (option) expect(err.detail).toMatchObject({ option })
    }
    expect(existsSync(join(tmp.dir, 'never.db'))).toBe(false)
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('never'))).toEqual([])
    expect(existsSync(dbPath)).toBe(false)
  })

  it('still starts with valid options (and closes the database it opened)', async () => {
    const dbPath = join(tmp.dir, 'ok.db')
    const server = await startAuthorityServer({ dbPath, policy: [{ effect: 'deny', tool: 'admin.*' }], sqlite: { synchronous: 'NORMAL' } })
    expect((await fetch(`${server.url}/.well-known/oauth-authorization-server`)).status).toBe(200)
    await server.close()
    expect(existsSync(`${dbPath}-wal`)).toBe(false)
  })
})

describe('damaged signing keys', () => {
  const SECRET = 'c2VjcmV0LXByaXZhdGUta2V5LW1hdGVyaWFsLTMyYg'

  it('a key file that is not JSON is STORE_ERROR naming the file, not a SyntaxError quoting the key', async () => {
    const keyFile = join(tmp.dir, 'damaged-keys.json')
    writeFileSync(keyFile, `{"keys":[{"kid":"k1","privateJwk":{"kty":"OKP","crv":"Ed25519","d":"${SECRET}"`, { mode: 0o600 })
    const err = await refusal(createAuthority({ issuer: ISSUER, keyFile }))
    expect(err.code).toBe('STORE_ERROR')
    expect(err.message).toContain(keyFile)
    expect(err.message).not.toContain(SECRET)
    expect(JSON.stringify(err.detail)).not.toContain(SECRET)
  })

  it('a key file with ill-shaped or invalid entries is STORE_ERROR without key material', async () => {
    for (const [n, text] of [
      ['array', '[]'],
      ['null-entry', '{"keys":[null]}'],
      ['no-kid', `{"keys":[{"privateJwk":{"d":"${SECRET}"},"createdAt":1}]}`],
      ['bad-key', `{"keys":[{"kid":"k1","privateJwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"${SECRET}"},"createdAt":1}]}`],
    ] as const) {
      const keyFile = join(tmp.dir, `keys-${n}.json`)
      writeFileSync(keyFile, text, { mode: 0o600 })
      const err = await refusal(createAuthority({ issuer: ISSUER, keyFile }))
      expect(err.code, n).toBe('STORE_ERROR')
      expect(err.message).not.toContain(SECRET)
    }
  })

  it('a damaged signing-key row in the SQLite store is STORE_ERROR without key material', async () => {
    const db = join(tmp.dir, 'damaged-row.db')
    await (await createAuthority({ issuer: ISSUER, store: openSqliteStore(db) })).close()
    const raw = new DatabaseSync(db)
    raw.prepare('UPDATE signing_keys SET private_jwk = ?').run(`{"kty":"OKP","d":"${SECRET}"`)
    raw.close()
    const store = openSqliteStore(db)
    const err = await refusal(createAuthority({ issuer: ISSUER, store }))
    await store.close()
    expect(err.code).toBe('STORE_ERROR')
    expect(err.message).not.toContain(SECRET)
  })
})
