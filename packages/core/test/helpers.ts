// Shared test helpers: fixtures, hex, and a real Authority-like chain builder (no mocks).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import {
  b64uEncode, buildRootMandate, createGuard, Ed25519Key, MandateError, narrowMandate, randomId, signMandate, verifyMandate,
  createLocalKeySet, type GuardOptions, type MandateClaims, type MandateErrorCode, type NarrowingRequest, type RootGrantRequest,
} from '@mandate/core'

export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8')) as T
}

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
export const jwkFromRawHex = (h: string) => ({ kty: 'OKP', crv: 'Ed25519', x: b64uEncode(hex(h)) })

/** Assert a sync function throws a MandateError with exactly this code. */
export function expectCode(fn: () => unknown, code: MandateErrorCode): MandateError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(MandateError.is(caught), `expected MandateError ${code}, got ${String(caught)}`).toBe(true)
  expect((caught as MandateError).code).toBe(code)
  return caught as MandateError
}

/** Assert a promise rejects with a MandateError with exactly this code. */
export async function expectReject(p: Promise<unknown>, code: MandateErrorCode): Promise<MandateError> {
  let caught: unknown
  try {
    await p
  } catch (err) {
    caught = err
  }
  expect(MandateError.is(caught), `expected MandateError ${code}, got ${String(caught)}`).toBe(true)
  expect((caught as MandateError).code).toBe(code)
  return caught as MandateError
}

export const ISSUER = 'https://authority.example'
export const AUD = 'https://tools.example/mcp'
export const AUD2 = 'https://other.example/api'

/** A small in-process authority: signs roots, narrows (verify parent → narrow → sign) like the real one. */
export class TestAuthority {
  readonly key = Ed25519Key.generate()
  readonly keys = createLocalKeySet({ keys: [this.key.publicJwk] })
  now = Math.floor(Date.now() / 1000)

  root(agent: Ed25519Key, overrides: Partial<RootGrantRequest> = {}): { token: string; claims: MandateClaims } {
    const claims = buildRootMandate(
      {
        subject: 'alice',
        agent: { id: agent.did, jkt: agent.jkt },
        purpose: 'triage',
        audiences: [AUD, AUD2],
        scopes: ['read', 'write'],
        tools: [{ type: 'tool_access', tools: ['files.*', 'billing.refund'], constraints: { amount: { type: 'max', value: 100 }, path: { type: 'path_prefix', prefix: '/data' } } }],
        maxDepth: 4,
        budget: { amount: 50, unit: 'USD' },
        maxUses: 10,
        ...overrides,
      },
      { issuer: ISSUER, now: this.now, jti: randomId(), txn: randomId() },
    )
    return { token: signMandate(claims, this.key), claims }
  }

  /** Verify the parent, then narrow it on behalf of `holder` and sign the child. */
  async narrow(parentToken: string, holder: Ed25519Key, request: NarrowingRequest): Promise<{ token: string; claims: MandateClaims }> {
    const parent = await verifyMandate(parentToken, { issuer: ISSUER, keys: this.keys, now: this.now })
    const claims = narrowMandate(parent.claims, request, { issuer: ISSUER, now: this.now, jti: randomId(), parentToken, caller: { id: holder.did, jkt: holder.jkt } })
    return { token: signMandate(claims, this.key), claims }
  }

  guard(extra: Partial<GuardOptions> = {}) {
    return createGuard({ issuer: ISSUER, jwks: { keys: [this.key.publicJwk] }, audience: AUD, ...extra })
  }

  delegate(to: Ed25519Key, extra: Partial<Omit<Extract<NarrowingRequest, { kind: 'delegation' }>, 'kind' | 'actor'>> = {}): NarrowingRequest {
    return { kind: 'delegation', actor: { id: to.did, jkt: to.jkt }, ...extra }
  }
}
