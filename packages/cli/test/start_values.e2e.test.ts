// `authority start --issuer` (and MANDATE_ISSUER) take one spelling of the issuer: it is pinned into
// the database and compared byte for byte by every client. Whitespace, case, a default port or dot
// segments are a usage error before anything is created (outside probe: trailing whitespace crashed
// with INTERNAL after the signing-key file was written; leading whitespace was pinned verbatim).
import { existsSync, readdirSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, mandate } from './support/cli.js'

describe('authority start --issuer spelling', () => {
  beforeAll(() => ensureBuilt(), 120_000)
  for (const [how, issuer] of [['flag', ' http://127.0.0.1:7499'], ['flag', 'http://127.0.0.1:7499 '], ['env', 'http://LOCALHOST:7499'], ['flag', 'https://a.example:443'], ['env', 'https://a.example/x/../y']] as const) {
    it(`${how} ${JSON.stringify(issuer)} is exit 2 naming the canonical form, nothing created`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'mandate-issuer-'))
      const db = join(dir, 'authority.db')
      const args = ['authority', 'start', '--db', db, '--port', '0', '--no-dashboard', ...(how === 'flag' ? ['--issuer', issuer] : [])]
      const r = await mandate(args, { env: how === 'env' ? { MANDATE_ISSUER: issuer } : {} })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/canonical form/)
      expect(existsSync(db)).toBe(false)
      expect(readdirSync(dir)).toEqual([])
    }, 30_000)
  }
})

describe('authority start: other values refused before anything is created (outside probe)', () => {
  beforeAll(() => ensureBuilt(), 120_000)
  it('a notifications file with a repeated member is exit 2 (strict JSON, not last-wins)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mandate-notif-'))
    const file = join(dir, 'notifications.json')
    await writeFile(file, '{"webhooks":[{"url":"https://hooks.example/x","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","includeArguments":false,"includeArguments":true}]}', { mode: 0o600 })
    const db = join(dir, 'authority.db')
    const r = await mandate(['authority', 'start', '--db', db, '--port', '0', '--no-dashboard', '--notifications', file])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/repeated/)
    expect(r.stderr).not.toContain('whsec_')
    expect(existsSync(db)).toBe(false)
  }, 30_000)
  it('a blank MANDATE_STORE is exit 2, and no database named by whitespace appears', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mandate-store-'))
    for (const store of [' ', 'sqlite: ']) {
      const r = await mandate(['authority', 'start', '--port', '0', '--no-dashboard'], { cwd: dir, env: { MANDATE_STORE: store } })
      expect(r.code, r.stderr).toBe(2)
    }
    expect(readdirSync(dir)).toEqual([])
  }, 30_000)
})
