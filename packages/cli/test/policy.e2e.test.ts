/**
 * `mandate policy check` and the policy part of `mandate authority start`, on the BUILT binary:
 * invalid policies are refused with POLICY_INVALID naming the file, the rule and the JSON pointer,
 * and `authority start` refuses one before it creates any directory, database or key.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import { beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, json, mandate, startAuthority } from './support/cli.js'

const DID = Ed25519Key.generate().did
let dir: string
const VALID = {
  $schema: '../node_modules/@mandate/authority/policy.schema.json',
  defaultEffect: 'deny',
  rules: [
    { id: 'no-admin', effect: 'deny', tool: 'admin.*', reason: 'admin tools are off limits' },
    { id: 'big-refunds', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } },
    { id: 'billing', effect: 'allow', subject: ['alice'], audience: 'https://billing.example.test/api', tool: 'billing.*' },
    { effect: 'allow', agent: DID },
  ],
}
const BAD = { rules: [...VALID.rules.slice(0, 3), { id: 'ops-bot', effect: 'allow', agnet: DID }, { effect: 'deny', constraints: {} }] }

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-policy-'))
  await writeFile(join(dir, 'valid.json'), JSON.stringify(VALID, null, 2))
  await writeFile(join(dir, 'bad.json'), JSON.stringify(BAD, null, 2))
  await writeFile(join(dir, 'broken.json'), '[{"effect": "deny",]')
  // the shape that used to end in `unexpected failure [INTERNAL]` after the database and keys existed
  await writeFile(join(dir, 'bad-array.json'), JSON.stringify([{ effect: 'deny', tool: 'admin.*' }, { effect: 'block', tool: 'billing.*' }]))
})

describe('mandate policy check', () => {
  it('explains a valid policy rule by rule and exits 0', async () => {
    const r = await mandate(['policy', 'check', join(dir, 'valid.json')])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('valid policy, 4 rules')
    expect(r.stdout).toContain('rule 0 "no-admin": deny')
    expect(r.stdout).toContain('at a call, the tool matches "admin.*"; at a grant, delegation or audience credential, every granted tool falls under "admin.*"')
    expect(r.stdout).toContain('rule 1 "big-refunds": require_approval')
    expect(r.stdout).toContain('argument "amount" is a number ≥ 100')
    expect(r.stdout).toContain('the subject (the user or system the work is for) is "alice"')
    expect(r.stdout).toContain(`rule 3 "rule-3": allow`)
    expect(r.stdout).toContain('when no rule matches: deny')
  })

  it('--json gives the same explanation as data', async () => {
    const r = await mandate(['policy', 'check', join(dir, 'valid.json'), '--json'])
    expect(r.code).toBe(0)
    const out = json<{ ok: boolean; defaultEffect: string; rules: { id: string; effect: string; operations: string[]; matches: string[] }[] }>(r)
    expect(out.ok).toBe(true)
    expect(out.defaultEffect).toBe('deny')
    expect(out.rules.map((x) => [x.id, x.effect, x.operations])).toEqual([
      ['no-admin', 'deny', ['grant', 'delegation', 'audience', 'call']], ['big-refunds', 'require_approval', ['call']], ['billing', 'allow', ['grant', 'delegation', 'audience', 'call']], ['rule-3', 'allow', ['grant', 'delegation', 'audience', 'call']],
    ])
  })

  it('lists every problem with file, rule and pointer, and exits 1', async () => {
    const file = join(dir, 'bad.json')
    const r = await mandate(['policy', 'check', file])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`${file}: rule 3 (id "ops-bot"), /rules/3/agnet: unknown member "agnet" in a rule (did you mean "agent"?)`)
    expect(r.stderr).toContain(`${file}: rule 4, /rules/4/constraints: unknown member "constraints" in a rule (did you mean "when"?)`)
    expect(r.stderr).toContain('(2 problems) [POLICY_INVALID]')
    const j = await mandate(['policy', 'check', file, '--json'])
    expect(j.code).toBe(1)
    expect(json<{ ok: boolean; code: string; errors: { pointer: string; rule_index: number; rule_id?: string }[] }>(j)).toMatchObject({
      ok: false, code: 'POLICY_INVALID', errors: [{ pointer: '/rules/3/agnet', rule_index: 3, rule_id: 'ops-bot' }, { pointer: '/rules/4/constraints', rule_index: 4 }],
    })
  })

  it('refuses a file that is missing or not JSON, naming it', async () => {
    for (const name of ['missing.json', 'broken.json']) {
      const r = await mandate(['policy', 'check', join(dir, name)])
      expect(r.code, name).toBe(1)
      expect(r.stderr).toContain(join(dir, name))
      expect(r.stderr).toContain('[POLICY_INVALID]')
    }
    expect((await mandate(['policy', 'check'])).code).toBe(2)
  })

  it('is listed in mandate --help', async () => {
    expect((await mandate(['--help'])).stdout).toContain('mandate policy check <file>')
  })
})

describe('mandate authority start --policy', () => {
  it.each([
    ['bad.json', 'rule 3 (id "ops-bot"), /rules/3/agnet'],
    ['bad-array.json', 'rule 1, /1/effect'],
  ])('refuses an invalid policy (%s) before creating any directory, database or key', async (name, where) => {
    const db = join(dir, `fresh-${name}`, 'state', 'authority.db')
    const r = await mandate(['authority', 'start', '--port', '0', '--db', db, '--policy', join(dir, name)])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${join(dir, name)}: ${where}`)
    expect(r.stderr).toContain('[POLICY_INVALID]')
    expect(r.stderr).not.toContain('INTERNAL')
    expect(existsSync(join(dir, `fresh-${name}`))).toBe(false)
    for (const f of [db, `${db}.admin.jwk`, `${db}.signing-keys.json`, `${db}.issuer`]) expect(existsSync(f), f).toBe(false)
  })

  it('refuses an invalid policy for an existing database and leaves its files as they were', async () => {
    const db = join(dir, 'existing', 'authority.db')
    const first = await startAuthority(['--port', '0', '--db', db], dir)
    await first.stop()
    const before = (await readdir(join(dir, 'existing'))).sort()
    const r = await mandate(['authority', 'start', '--port', '0', '--db', db, '--policy', join(dir, 'broken.json')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('[POLICY_INVALID]')
    expect((await readdir(join(dir, 'existing'))).sort()).toEqual(before)
  })

  it('starts with a valid object-form policy (defaultEffect and rules)', async () => {
    const server = await startAuthority(['--port', '0', '--db', join(dir, 'ok', 'authority.db'), '--policy', join(dir, 'valid.json')], dir)
    expect(server.info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    // it serves (and, by now, has its SIGTERM handler: it is installed just after the start line)
    expect((await fetch(`${server.info.url}/.well-known/oauth-authorization-server`)).status).toBe(200)
    const code = await server.stop()
    expect(code, server.output()).toBe(0)
  })
})
