/**
 * `mandate federation add|list|remove|test` and the binding columns of `mandate agent list`, run in
 * process (main() with a captured Io) against a real Authority server on 127.0.0.1 (SQLite file)
 * that has one federation rule from its configuration; `federation test -` reading stdin runs the
 * CLI sources as a process. Workload tokens are real ES256 JWTs signed with node:crypto, checked by
 * the Authority against the rule's inline JWKS.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createProof, Ed25519Key, jwkThumbprint, publicJwkFromDidKey } from '@mandate/core'
import { createAuthorityServer, openSqliteStore, type AuthorityServer } from '@mandate/authority'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../src/main.js'
import type { Io } from '../src/io.js'
import { PACKAGE_DIR } from './support/cli.js'
import { CI_ISSUER as ISSUER, ciPlatform, workloadRule, workloadToken as mintToken } from './support/federation.js'

let dir = ''
let server: AuthorityServer
let env: NodeJS.ProcessEnv
const ci = ciPlatform()

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, env, (json): Io => ({ json, out: (t) => void out.push(t), err: (t) => void err.push(t) }))
  return { code, out: out.join('\n'), err: err.join('\n') }
}

const rule = (id: string, repository: string) => workloadRule(ci, id, repository)
const workloadToken = (repository: string) => mintToken(ci, server.url, repository)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-federation-'))
  server = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1',
    authority: { store: openSqliteStore(join(dir, 'authority.db'), { synchronous: 'NORMAL' }), federation: { rules: [rule('from-config', 'acme/infra')] } },
  })
  const admin = Ed25519Key.generate()
  await server.authority.registerAgent({ did: admin.did, name: 'ops', role: 'admin' })
  await writeFile(join(dir, 'admin.jwk'), JSON.stringify({ ...admin.exportPrivateJwk(), kid: admin.kid }), { mode: 0o600 })
  env = { MANDATE_URL: server.url, MANDATE_KEY: join(dir, 'admin.jwk') }
  await writeFile(join(dir, 'one.json'), JSON.stringify(rule('deploy', 'acme/deploy')))
  await writeFile(join(dir, 'many.json'), JSON.stringify({ $schema: '../node_modules/@mandate/authority/federation.schema.json', rules: [rule('web', 'acme/web'), rule('api', 'acme/api')] }))
  await writeFile(join(dir, 'dup.json'), JSON.stringify({ rules: [rule('docs', 'acme/docs'), rule('deploy', 'acme/other')] }))
  await writeFile(join(dir, 'bad.json'), JSON.stringify({ ...rule('bad', 'acme/bad'), kind: 'robot' }))
  await writeFile(join(dir, 'notjson.json'), '{"id": ')
})
afterAll(async () => {
  await server?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('mandate federation add / list / remove', () => {
  it('adds one rule or a { rules } file, lists config rules first with their source, and refuses a used id', async () => {
    const one = await run(['federation', 'add', join(dir, 'one.json')])
    expect(one.code, one.err).toBe(0)
    expect(one.out).toBe('added 1 federation rule: deploy')
    const many = await run(['federation', 'add', join(dir, 'many.json'), '--json'])
    expect(many.code, many.err).toBe(0)
    expect(JSON.parse(many.out)).toEqual({ ok: true, added: ['web', 'api'] })
    const dup = await run(['federation', 'add', join(dir, 'dup.json')])
    expect(dup.code).toBe(1)
    expect(dup.err).toContain('already exists')
    expect(dup.err).toContain('rule deploy; added before it: docs')
    const list = await run(['federation', 'list'])
    expect(list.code, list.err).toBe(0)
    const lines = list.out.split('\n')
    expect(lines[0]).toMatch(/^ID\s+KIND\s+TOKEN\s+ISSUER\s+SOURCE/)
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 5).join(' '))).toEqual([
      `from-config agent workload ${ISSUER} config`,
      `deploy agent workload ${ISSUER} store`,
      `web agent workload ${ISSUER} store`,
      `api agent workload ${ISSUER} store`,
      `docs agent workload ${ISSUER} store`,
    ])
    const json = JSON.parse((await run(['federation', 'list', '--json'])).out) as { rules: Array<{ id: string; source: string; createdBy?: string }> }
    expect(json.rules.map((r) => r.id)).toEqual(['from-config', 'deploy', 'web', 'api', 'docs'])
    expect(json.rules[1]).toMatchObject({ source: 'store', createdBy: expect.stringMatching(/^did:key:/) })
  })

  it('refuses an invalid rule, a file that is not JSON or is missing (nothing added)', async () => {
    const bad = await run(['federation', 'add', join(dir, 'bad.json')])
    expect(bad.code).toBe(1)
    // checked before anything is sent: the message names the file and the JSON pointer
    expect(bad.err).toMatch(/bad\.json: federation rule \/rules\/0\//)
    expect(bad.err).toMatch(/CONFIG_INVALID/)
    expect((await run(['federation', 'add', join(dir, 'notjson.json')])).code).toBe(1)
    expect((await run(['federation', 'add', join(dir, 'missing.json')])).code).toBe(2)
    expect((await run(['federation', 'add'])).code).toBe(2)
    const ids = (JSON.parse((await run(['federation', 'list', '--json'])).out) as { rules: Array<{ id: string }> }).rules.map((r) => r.id)
    expect(ids).not.toContain('bad')
  })

  it('removes a stored rule; a config rule or an unknown id is refused (exit 1)', async () => {
    const r = await run(['federation', 'remove', 'docs'])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toBe('removed federation rule docs')
    const again = await run(['federation', 'remove', 'docs'])
    expect(again.code).toBe(1)
    expect(again.err).toContain('[NOT_FOUND]')
    const cfg = await run(['federation', 'remove', 'from-config'])
    expect(cfg.code).toBe(1)
    expect(cfg.err).toContain('edit the config file')
    expect((await run(['federation', 'remove', 'Not/An/Id'])).code).toBe(2)
  })
})

describe('mandate federation test', () => {
  it('names the matching rule and why the others do not (exit 0); never prints the token', async () => {
    const token = workloadToken('acme/deploy')
    const r = await run(['federation', 'test', token])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`issuer   ${ISSUER}`)
    expect(r.out).toContain('matches  rule deploy')
    expect(r.out).toMatch(/rule deploy \(store\): accepts the token/)
    expect(r.out).toMatch(/rule from-config \(config\): no — .*repository/)
    expect(r.out).not.toContain(token.split('.')[2])
    const json = JSON.parse((await run(['federation', 'test', token, '--json'])).out) as { matched?: string; verdicts: Array<{ rule: string; matched: boolean }> }
    expect(json.matched).toBe('deploy')
    expect(json.verdicts.map((v) => v.rule)).toEqual(['from-config', 'deploy', 'web', 'api'])
  })

  it('exit 1 when no rule matches; the token may come from a file', async () => {
    await writeFile(join(dir, 'fork.jwt'), `${workloadToken('evil/fork')}\n`)
    const r = await run(['federation', 'test', `@${join(dir, 'fork.jwt')}`])
    expect(r.code).toBe(1)
    expect(r.out).toContain('matches  no rule')
    expect(r.out.split('\n').filter((l) => l.includes(': no — '))).toHaveLength(4)
    expect((await run(['federation', 'test'])).code).toBe(2)
  })

  it('reads the token from stdin with -', async () => {
    const token = workloadToken('acme/web')
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', join(PACKAGE_DIR, 'src', 'bin.ts'), 'federation', 'test', '-'], { env: { ...process.env, ...env, NO_COLOR: '1' }, cwd: PACKAGE_DIR, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
      })
      child.stdin?.end(token)
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('matches  rule web')
  }, 40_000)
})

describe('mandate agent list', () => {
  it('shows what a workload agent is bound to and when its registration ends; plain registries keep their columns', async () => {
    const plain = await run(['agent', 'list'])
    expect(plain.out.split('\n')[0]).toMatch(/^NAME\s+ROLE\s+OWNER\s+STATUS\s+SINCE\s+REASON\s+DID$/)
    const key = Ed25519Key.generate()
    const expiresAt = Date.now() + 600_000
    await server.authority.store.insertAgent({
      did: key.did, jkt: jwkThumbprint(publicJwkFromDidKey(key.did)), name: 'ci:acme/deploy', role: 'agent', status: 'enabled', disabled: false, createdAt: Date.now(), expiresAt,
      binding: { iss: ISSUER, sub: 'repo:acme/deploy:ref:refs/heads/main', rule: 'deploy', claims: { repository: 'acme/deploy' } },
    }, { time: Date.now(), type: 'agent.registered', fields: { agent: key.did } })
    const r = await run(['agent', 'list'])
    expect(r.code, r.err).toBe(0)
    const [head, ...rows] = r.out.split('\n')
    expect(head).toMatch(/^NAME\s+ROLE\s+OWNER\s+STATUS\s+SINCE\s+REASON\s+BOUND TO\s+EXPIRES\s+DID$/)
    const row = rows.find((l) => l.startsWith('ci:acme/deploy'))
    expect(row).toContain(`${ISSUER} repo:acme/deploy:ref:refs/heads/main (rule deploy)`)
    expect(row).toContain(new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'))
    expect(rows.find((l) => l.startsWith('ops'))).toMatch(/\s-\s+-\s+did:key:/)
    const json = JSON.parse((await run(['agent', 'list', '--json'])).out) as { agents: Array<{ did: string; binding?: unknown; expiresAt?: number }> }
    expect(json.agents.find((a) => a.did === key.did)).toMatchObject({ expiresAt, binding: { rule: 'deploy', iss: ISSUER } })
  })
})

describe('mandate token inspect', () => {
  it('shows a federated mandate\'s external identity (issuer and subject)', async () => {
    const key = Ed25519Key.generate()
    const res = await server.authority.token(
      { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: await mintToken(ci, server.url, 'acme/infra') },
      { dpop: createProof(key, { method: 'POST', url: server.authority.endpoints.token }) },
    )
    const r = await run(['token', 'inspect', res.access_token])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`subject   ${ISSUER}#repo:acme/infra:ref:refs/heads/main`)
    expect(r.out).toContain(`identity  repo:acme/infra:ref:refs/heads/main at ${ISSUER} (federated)`)
  })
})
