/**
 * `mandate authority start --federation FILE` (the BUILT binary, or the sources with
 * MANDATE_CLI_SOURCE=1): an invalid rules file is refused with CONFIG_INVALID naming the file and
 * the JSON pointer before anything is created; a valid one is in force — `mandate federation list`
 * shows its rules as `config`, and `mandate federation test` explains real workload tokens.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, json, mandate, startAuthority } from './support/cli.js'
import { CI_ISSUER, ciPlatform, workloadRule, workloadToken } from './support/federation.js'

const ci = ciPlatform()
let dir: string
let server: Awaited<ReturnType<typeof startAuthority>> | undefined

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-federation-start-'))
  await writeFile(join(dir, 'rules.json'), JSON.stringify({ rules: [workloadRule(ci, 'deploy', 'acme/deploy')] }))
  const bad = workloadRule(ci, 'deploy', 'acme/deploy')
  await writeFile(join(dir, 'bad.json'), JSON.stringify({ rules: [{ ...bad, claims: { repository: { regex: '.*' } } }] }))
  await writeFile(join(dir, 'broken.json'), '{"rules": [')
})
afterAll(async () => {
  await server?.stop()
})

describe('mandate authority start --federation', () => {
  for (const name of ['bad.json', 'broken.json']) {
    it(`refuses ${name} with CONFIG_INVALID naming the file, and creates nothing`, async () => {
      const db = join(dir, `never-${name}.db`)
      const r = await mandate(['authority', 'start', '--port', '0', '--db', db, '--federation', join(dir, name)])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('[CONFIG_INVALID]')
      expect(r.stderr).toContain(join(dir, name))
      if (name === 'bad.json') expect(r.stderr).toContain('/rules/0/claims/repository')
      for (const f of [db, `${db}.admin.jwk`, `${db}.signing-keys.json`, `${db}.issuer`]) expect(existsSync(f), f).toBe(false)
    })
  }

  it('serves the rules of a valid file as config rules; federation test explains a real token', async () => {
    server = await startAuthority(['--port', '0', '--db', join(dir, 'authority.db'), '--federation', join(dir, 'rules.json')], dir)
    const env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
    const list = await mandate(['federation', 'list', '--json'], { env })
    expect(list.code, list.stderr).toBe(0)
    expect(json<{ rules: Array<{ id: string; source: string; trust: { issuer: string } }> }>(list).rules).toMatchObject([{ id: 'deploy', source: 'config', trust: { issuer: CI_ISSUER } }])
    const token = workloadToken(ci, server.info.issuer, 'acme/deploy')
    const ok = await mandate(['federation', 'test', token], { env })
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain('matches  rule deploy')
    expect(ok.stdout + ok.stderr).not.toContain(token)
    const none = await mandate(['federation', 'test', '-'], { env, input: workloadToken(ci, server.info.issuer, 'evil/fork') })
    expect(none.code).toBe(1)
    expect(none.stdout).toMatch(/rule deploy \(config\): no — .*repository/)
    const rm = await mandate(['federation', 'remove', 'deploy'], { env })
    expect(rm.code).toBe(1)
    expect(rm.stderr).toContain('edit the config file')
  })
})
