/**
 * `mandate token inspect` on an offline chain (`root~hop~hop`): one line per holder-signed hop
 * (kind, holder, tools, expiry), the last link's claims, and with `--jwks FILE` an offline
 * verification of the whole chain (a tampered or re-signed hop is refused with its code). Run
 * in process against the sources (main() with a captured Io), with a real in-process Authority.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { attenuateMandate, Ed25519Key, signCompactJws } from '@mandate/core'
import { createAuthority, type Authority } from '@mandate/authority'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../src/main.js'
import type { Io } from '../src/io.js'

const AUD = 'http://127.0.0.1:7500/mcp'

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, {}, (json): Io => ({ json, out: (t) => void out.push(t), err: (t) => void err.push(t) }))
  return { code, out: out.join('\n'), err: err.join('\n') }
}

let dir = ''
let authority: Authority
let chain = ''
let jwksPath = ''
let otherJwksPath = ''
const a = Ed25519Key.generate()
const b = Ed25519Key.generate()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-chain-'))
  authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', callModes: { offline: true } })
  const grantor = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'orchestrator' })
  const root = await authority.grant({
    grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], offline: { maxHops: 2 },
    tools: [{ type: 'tool_access', tools: ['docs.*'] }, { type: 'tool_access', tools: ['billing.get'] }],
  })
  const hop1 = attenuateMandate(root.token, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['docs.read'] }] })
  chain = attenuateMandate(hop1, b, { kind: 'call', audience: AUD, tool: 'docs.read', arguments: { page: 1 } })
  jwksPath = join(dir, 'jwks.json')
  await writeFile(jwksPath, JSON.stringify(authority.jwks()))
  const other = await createAuthority({ issuer: 'http://127.0.0.1:7400' })
  otherJwksPath = join(dir, 'other.json')
  await writeFile(otherJwksPath, JSON.stringify(other.jwks()))
  await other.close()
})
afterAll(async () => {
  await authority.close()
  await rm(dir, { recursive: true, force: true })
})

describe('mandate token inspect with an offline chain', () => {
  it('prints each hop (kind, holder, tools, expiry) and the last link, unverified without --jwks', async () => {
    const r = await run(['token', 'inspect', chain])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain('UNVERIFIED offline chain of 2 hop(s)')
    const hops = r.out.split('\n').filter((l) => l.startsWith('hop '))
    expect(hops).toHaveLength(2)
    expect(hops[0]).toMatch(/^hop 1\s+delegation → did:key:z6Mk.*tools docs\.read\s+expires \d{4}-/)
    expect(hops[1]).toMatch(/^hop 2\s+call → .*tools docs\.read/)
    expect(r.out).toContain('call      docs.read args#')
  })

  it('verifies the chain offline with --jwks, and says so', async () => {
    const r = await run(['token', 'inspect', chain, '--jwks', jwksPath])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain('VALID offline chain of 2 hop(s)')
    const j = await run(['token', 'inspect', chain, '--jwks', jwksPath, '--json'])
    const doc = JSON.parse(j.out) as { valid: boolean; hops: Array<{ kind: string; holder: string; tools: string[] }> }
    expect(doc.valid).toBe(true)
    expect(doc.hops.map((h) => [h.kind, h.holder, h.tools])).toEqual([['delegation', b.did, ['docs.read']], ['call', b.did, ['docs.read']]])
  })

  it('refuses a chain whose root another key signed, a dropped hop link, and a hop re-signed by the wrong key', async () => {
    const wrongRoot = await run(['token', 'inspect', chain, '--jwks', otherJwksPath])
    expect(wrongRoot.code).toBe(1)
    expect(wrongRoot.err).toMatch(/KEY_NOT_FOUND|SIGNATURE_INVALID/)
    const [root, hop1, hop2] = chain.split('~') as [string, string, string]
    const dropped = await run(['token', 'inspect', `${root}~${hop2}`, '--jwks', jwksPath])
    expect(dropped.code).toBe(1)
    expect(dropped.err).toContain('ATTENUATION_INVALID')
    // B signs a hop in A's place: the link's key is not the one the root is bound to
    const forged = attenuateMandate(root, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['docs.read'] }] }).split('~')[1] as string
    const [h, p] = forged.split('.') as [string, string]
    const swapped = await run(['token', 'inspect', `${root}~${h}.${p}.${(hop1.split('.')[2] as string)}`, '--jwks', jwksPath])
    expect(swapped.code).toBe(1)
    expect(swapped.err).toContain('ATTENUATION_INVALID')
    const json = await run(['token', 'inspect', `${root}~${hop2}`, '--jwks', jwksPath, '--json'])
    expect(JSON.parse(json.out)).toMatchObject({ valid: false, code: 'ATTENUATION_INVALID' })
  })

  it('still inspects a single mandate, verifies it with --jwks, and refuses --issuer without --jwks', async () => {
    const root = chain.split('~')[0] as string
    expect((await run(['token', 'inspect', root])).out).toContain('offline   up to 2 holder-signed hop(s)')
    const v = await run(['token', 'inspect', root, '--jwks', jwksPath])
    expect(v.code, v.err).toBe(0)
    expect(v.out).toContain('VALID  signed by a key of the given JWKS')
    expect((await run(['token', 'inspect', root, '--issuer', 'http://127.0.0.1:7400'])).code).toBe(2)
  })
})

describe('mandate token inspect on a token from elsewhere', () => {
  it('says which claims are absent instead of printing "undefined"', async () => {
    const foreign = signCompactJws({ alg: 'EdDSA', typ: 'at+jwt' }, { iss: 'https://idp.example', exp: 2_000_000_000, sub: 42 }, Ed25519Key.generate())
    const r = await run(['token', 'inspect', foreign])
    expect(r.code, r.err).toBe(0)
    expect(r.out).not.toContain('undefined')
    expect(r.out).toMatch(/^actor +\(absent\)$/m)
    expect(r.out).toMatch(/^jti +\(absent\)$/m)
    expect(r.out).toMatch(/^subject +42$/m)
    expect(r.out).toMatch(/^issuer +https:\/\/idp\.example$/m)
  })
})
