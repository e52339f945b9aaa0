// Node keeps only the first of repeated Authorization lines in req.headers; with rawHeaders the guard
// sees every line and refuses repeats. Real node:http server on 127.0.0.1, raw repeated lines on the wire.
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { challengeFor, createProof, Ed25519Key, MandateError } from '@mandate/core'
import { TestAuthority } from './helpers.js'

const auth = new TestAuthority()
const agent = Ed25519Key.generate()
const server = createServer((req, res) => {
  const useRaw = req.url?.startsWith('/raw') ?? false
  guard().verifyRequest({ method: req.method as string, url: `${origin}${req.url}`, headers: req.headers, ...(useRaw ? { rawHeaders: req.rawHeaders } : {}) }).then(
    () => void res.writeHead(200).end('ok'),
    (err: unknown) => void res.writeHead(challengeFor(err).status).end(MandateError.is(err) ? err.code : 'INTERNAL'),
  )
})
let origin = ''
let g: ReturnType<TestAuthority['guard']> | undefined
const guard = () => (g ??= auth.guard({ audience: origin }))
afterAll(() => new Promise((r) => server.close(r)))

/** Send raw HTTP/1.1 so the same header line really appears twice. */
function raw(path: string, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const port = (server.address() as AddressInfo).port
    const s = connect(port, '127.0.0.1', () => s.end(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${lines.join('\r\n')}\r\n\r\n`))
    let data = ''
    s.on('data', (c: Buffer) => (data += c.toString()))
    s.on('end', () => resolve(data))
    s.on('error', reject)
  })
}

describe('repeated Authorization / DPoP lines', () => {
  it('req.headers hides the second Authorization line; rawHeaders lets the guard refuse it', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const token = auth.root(agent, { audiences: [origin], tools: [{ type: 'tool_access', tools: ['files.*'] }] }).token
    const other = auth.root(Ed25519Key.generate(), { audiences: [origin] }).token
    const dpop = (path: string) => `DPoP: ${createProof(agent, { method: 'GET', url: `${origin}${path}`, accessToken: token })}`
    // without rawHeaders Node silently keeps the first (valid) line: the weakness the option closes
    expect(await raw('/plain', [`Authorization: DPoP ${token}`, `Authorization: DPoP ${other}`, dpop('/plain')])).toMatch(/^HTTP\/1.1 200/)
    const twice = await raw('/raw', [`Authorization: DPoP ${token}`, `Authorization: DPoP ${other}`, dpop('/raw')])
    expect(twice).toMatch(/^HTTP\/1.1 401/)
    expect(twice).toMatch(/TOKEN_MALFORMED/)
    expect(await raw('/raw2', [`Authorization: DPoP ${token}`, dpop('/raw2')])).toMatch(/^HTTP\/1.1 200/)
  })
})
