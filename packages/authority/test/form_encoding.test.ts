/**
 * Strict percent-decoding of application/x-www-form-urlencoded bodies (outside probe, finding 1):
 * a percent-escape that is malformed ('%' without two hex digits) or whose bytes are not UTF-8
 * (invalid bytes, overlong forms, encoded surrogates, truncated sequences) is refused as
 * `invalid_request` (INVALID_REQUEST, 400), never turned into U+FFFD, so `alice%FF` and `alice%FE`
 * can no longer name one subject. A U+FFFD sent as UTF-8 (raw or `%EF%BF%BD`) is kept, `+` is a
 * space. The parser alone (against a byte-level oracle and URLSearchParams), then over real HTTP on
 * 127.0.0.1 at /token, /introspect and /revoke.
 */
import { createClientAssertion, createProof, decodeMandateUnverified, Ed25519Key, MandateError } from '@mandate/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'
import { parseForm } from '../src/http/body.js'
import { AUD, TOOLS } from './helpers.js'

const TASK = 'urn:mandate:grant-type:task'
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const PERCENT_ERROR = /percent-escape that is malformed or not UTF-8/

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const hex = (b: number) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`
const percentEncode = (bytes: Uint8Array) => [...bytes].map(hex).join('')

/**
 * The byte-level reading (WHATWG percent-decode, then a fatal UTF-8 decode), independent of
 * decodeURIComponent: undefined where the strict parser must refuse.
 */
function oracle(component: string): string | undefined {
  const bytes = new TextEncoder().encode(component.replaceAll('+', ' '))
  const out: number[] = []
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number
    if (b !== 0x25) {
      out.push(b)
      continue
    }
    const pair = String.fromCharCode(bytes[i + 1] ?? 0, bytes[i + 2] ?? 0)
    if (!/^[0-9A-Fa-f]{2}$/.test(pair)) return undefined
    out.push(parseInt(pair, 16))
    i += 2
  }
  try {
    return strictUtf8.decode(new Uint8Array(out))
  } catch {
    return undefined
  }
}

function refusal(fn: () => unknown): MandateError | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    expect(MandateError.is(err), String(err)).toBe(true)
    return err as MandateError
  }
}

describe('parseForm', () => {
  it('refuses the probe\'s inputs and keeps UTF-8 encoded U+FFFD', () => {
    for (const bad of ['subject=alice%FF', 'subject=alice%FE', 'subject=alice%C0%80', 'x=x%E0%A4%A', 'x=%E0%A4', 'x=%ED%A0%80', 'x=%F4%90%80%80', 'x=%80', 'x=%', 'x=a%2', 'x=%zz', 'x=%%41', 'x%FF=1', 'a=1&b=%C3']) {
      const err = refusal(() => parseForm(bad))
      expect(err, bad).toBeDefined()
      expect(err).toMatchObject({ code: 'INVALID_REQUEST', status: 400, oauthError: 'invalid_request' })
      expect(err?.message).toMatch(PERCENT_ERROR)
    }
    expect(parseForm('subject=alice%EF%BF%BD')).toEqual([['subject', 'alice\uFFFD']])
    expect(parseForm('subject=alice\uFFFD')).toEqual([['subject', 'alice\uFFFD']])
    expect(parseForm('a=x+y%2B%20z&b&=c&&d=%F0%9F%98%80%25')).toEqual([['a', 'x y+ z'], ['b', ''], ['', 'c'], ['d', '\u{1F600}%']])
    expect(parseForm('')).toEqual([])
    expect(parseForm('k=a=b')).toEqual([['k', 'a=b']])
  })

  it('percent-encoded bytes are accepted exactly when they are UTF-8, and decode to that text (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), (a, b) => {
      const parse = (bytes: Uint8Array) => {
        let v: string | undefined
        const err = refusal(() => void (v = parseForm(`subject=${percentEncode(bytes)}`)[0]?.[1]))
        return err ? undefined : (v ?? '')
      }
      const expected = (bytes: Uint8Array) => {
        try {
          return strictUtf8.decode(bytes)
        } catch {
          return undefined
        }
      }
      expect(parse(a)).toBe(expected(a))
      // two different byte strings never decode to one value
      const [pa, pb] = [parse(a), parse(b)]
      if (pa !== undefined && pb !== undefined && Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) expect(pa).not.toBe(pb)
    }), { numRuns: 2000 })
  })

  it('agrees with a byte-level oracle, and with URLSearchParams wherever it accepts (property)', () => {
    const piece = fc.constantFrom('%', '%4', '%41', '%2B', '%25', '%C3', '%A9', '%FF', '%EF%BF%BD', '%C0%80', '%ED%A0%80', '%F0%9F', '%98%80', 'a', 'Z', '0', 'f', 'g', '+', '=', '&', 'é', '\uFFFD', '\u{1F600}', ' ')
    fc.assert(fc.property(fc.array(piece, { maxLength: 24 }).map((p) => p.join('')), (text) => {
      const expected: Array<[string, string]> = []
      let refused = false
      for (const seq of text.split('&')) {
        if (seq === '') continue
        const eq = seq.indexOf('=')
        const [k, v] = eq === -1 ? [oracle(seq), ''] : [oracle(seq.slice(0, eq)), oracle(seq.slice(eq + 1))]
        if (k === undefined || v === undefined) refused = true
        else expected.push([k, v])
      }
      let got: Array<[string, string]> = []
      const err = refusal(() => void (got = parseForm(text)))
      expect(err !== undefined, text).toBe(refused)
      if (refused) {
        expect(err).toMatchObject({ code: 'INVALID_REQUEST' })
        return
      }
      expect(got).toEqual(expected)
      expect(got).toEqual([...new URLSearchParams(text)])
    }), { numRuns: 3000 })
  })
})

describe('over HTTP', () => {
  let server: AuthorityServer
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()

  beforeAll(async () => {
    server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1' })
    await server.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await server.authority.registerAgent({ did: agent.did, name: 'agent' })
  })
  afterAll(async () => {
    await server.close()
  })

  /** A task grant whose form body carries `subject` exactly as given (already percent-encoded). */
  function grant(subject: string): Promise<Response> {
    const url = `${server.url}/token`
    const enc = encodeURIComponent
    const body = [
      `grant_type=${enc(TASK)}`, `subject=${subject}`, `agent=${enc(agent.did)}`, `resource=${enc(AUD)}`, `authorization_details=${enc(JSON.stringify(TOOLS))}`,
      `client_assertion_type=${enc(JWT_BEARER)}`, `client_assertion=${createClientAssertion(grantor, { clientId: grantor.did, audience: server.url })}`,
    ].join('&')
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(grantor, { method: 'POST', url }) }, body })
  }

  async function expectRefused(res: Response): Promise<void> {
    expect(res.status).toBe(400)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ error: 'invalid_request', mandate_code: 'INVALID_REQUEST' })
    expect(body.error_description).toMatch(PERCENT_ERROR)
  }

  it('the probe\'s subjects are refused at /token and issue nothing', async () => {
    const before = await server.authority.countMandates()
    for (const subject of ['alice%FF', 'alice%FE', 'alice%C0%80', 'x%E0%A4%A', 'alice%', 'alice%G0', 'alice%ED%A0%80']) await expectRefused(await grant(subject))
    expect(await server.authority.countMandates()).toBe(before)
  })

  it('a U+FFFD sent as UTF-8 (escaped or raw) stays a valid subject, and + is a space', async () => {
    for (const [sent, subject] of [['alice%EF%BF%BD', 'alice\uFFFD'], ['alice\uFFFD', 'alice\uFFFD'], ['alice+smith%2B1', 'alice smith+1']] as const) {
      const res = await grant(sent)
      const body = (await res.json()) as { access_token?: string }
      expect(res.status, JSON.stringify(body)).toBe(200)
      expect(decodeMandateUnverified(body.access_token as string).payload.sub).toBe(subject)
    }
  })

  it('/introspect and /revoke read their forms the same way', async () => {
    for (const path of ['/introspect', '/revoke']) {
      const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x%FFy' })
      await expectRefused(res)
    }
  })

  it('query strings are decoded as strictly (revocation status, the admin audit and revocation filters)', async () => {
    const admin = Ed25519Key.generate()
    await server.authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
    const auth = () => ({ authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: server.url })}` })
    await expectRefused(await fetch(`${server.url}/revocation-status?since=%FF`))
    for (const q of ['subject=alice%FF', 'subject=alice%C0%80', 'agent=%E0%A4%A', 'txn=%']) {
      await expectRefused(await fetch(`${server.url}/audit?${q}`, { headers: auth() }))
    }
    // the escaped percent sign is a filter value like any other
    expect((await fetch(`${server.url}/audit?subject=alice%25FF`, { headers: auth() })).status).toBe(200)
  })

  it('random percent-encoded subjects: refused exactly when not UTF-8 (property, real HTTP)', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 6 }), async (bytes) => {
      let utf8: string | undefined
      try {
        utf8 = strictUtf8.decode(bytes)
      } catch {
        utf8 = undefined
      }
      // a subject must be printable: prefix one, so that only the encoding decides
      const res = await grant(`s${percentEncode(bytes)}`)
      if (utf8 === undefined) return expectRefused(res)
      const body = (await res.json()) as Record<string, unknown>
      expect(body.error_description ?? '').not.toMatch(PERCENT_ERROR)
    }), { numRuns: 40 })
  })
})
