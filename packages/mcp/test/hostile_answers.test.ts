// A hostile MCP server's answers to a tools/call (outside probe): an endless JSON result, an SSE
// event that never ends, a huge error body, a redirect. The client reads each within its bound and
// refuses with INVALID_RESPONSE; a redirect is never followed with a fresh credential. Real servers
// on 127.0.0.1, the real in-process Authority.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Ed25519Key, MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMandateFetch } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'

let world: TestAuthority
let agent: Ed25519Key
const servers: Server[] = []
beforeAll(async () => {
  world = await createTestAuthority()
  agent = await world.agent('hostile-answers-agent')
})
afterAll(async () => {
  for (const s of servers) s.closeAllConnections()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  await world.close()
})

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
}

/** Write `chunk` until the client goes away (or `total` bytes); count what was written. */
function pump(res: ServerResponse, chunk: Buffer, sent: { bytes: number }, total = Infinity): void {
  const go = () => {
    while (!res.destroyed && sent.bytes < total && res.write(chunk)) sent.bytes += chunk.length
    if (res.destroyed) return
    if (sent.bytes >= total) return void res.end()
    res.once('drain', go)
  }
  go()
}

const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } })
const init = () => ({ method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body })

async function fetchFor(url: string, maxResponseBytes?: number) {
  const g = await world.grant(agent, { audiences: [url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
  return createMandateFetch({ serverUrl: url, authority: world.clientFor(agent), key: agent, mandate: g.token, discover: false, ...(maxResponseBytes !== undefined ? { maxResponseBytes } : {}) })
}

async function readRefused(res: Response): Promise<MandateError> {
  const err = await res.text().then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), String(err)).toBe(true)
  expect((err as MandateError).code).toBe('INVALID_RESPONSE')
  return err as MandateError
}

describe('answers to a tools/call are bounded as they stream', () => {
  it('an endless JSON result is refused at the limit; the server could write little more than that', async () => {
    const sent = { bytes: 0 }
    const url = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"')
      pump(res, Buffer.alloc(64 * 1024, 0x61), sent)
    })
    const f = await fetchFor(url, 1024 * 1024)
    const err = await readRefused(await f(url, init()))
    expect(err.detail?.limit).toBe(1024 * 1024)
    await new Promise((r) => setTimeout(r, 200))
    expect(sent.bytes).toBeLessThan(16 * 1024 * 1024)
  })

  it('an SSE event that never ends is refused; a long stream of small events is not', async () => {
    const sent = { bytes: 0 }
    const endless = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('event: message\ndata: ')
      pump(res, Buffer.alloc(64 * 1024, 0x62), sent)
    })
    await readRefused(await (await fetchFor(endless, 1024 * 1024))(endless, init()))
    // 3 MiB in 1 KiB events, then the result: fine under a 1 MiB per-event bound
    const event = Buffer.from(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1, message: 'p'.repeat(900) } })}\n\n`)
    const many = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const s = { bytes: 0 }
      const total = 3 * 1024 * 1024
      const go = () => {
        while (!res.destroyed && s.bytes < total && res.write(event)) s.bytes += event.length
        if (s.bytes >= total) return void res.end(`event: message\r\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}\r\n\r\n`)
        res.once('drain', go)
      }
      go()
    })
    const text = await (await (await fetchFor(many, 1024 * 1024))(many, init())).text()
    expect(text.length).toBeGreaterThan(3 * 1024 * 1024)
    expect(text).toContain('"result":{"content":[]}')
  })

  it('an error answer is read only up to 64 KiB', async () => {
    const url = await listen((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end('e'.repeat(1024 * 1024))
    })
    const res = await (await fetchFor(url))(url, init())
    expect(res.status).toBe(500)
    expect((await readRefused(res)).detail?.limit).toBe(64 * 1024)
  })

  it('maxResponseBytes is checked when the fetch is built', async () => {
    for (const v of [0, -1, 1.5, 100, NaN, '1e9']) {
      await expect(fetchFor('http://127.0.0.1:1/mcp', v as number)).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    }
  })
})

describe('a redirect answering a tools/call', () => {
  it('is refused, and no second credential is minted to follow it', async () => {
    let posts = 0
    const url = await listen((req, res) => {
      posts++
      res.writeHead(307, { location: `/mcp?r=${posts}` }).end()
      req.resume()
    })
    const f = await fetchFor(url)
    const before = (await world.reports({})).length
    const exchanges = async () => (await world.authority.audit.query({ type: 'exchange' })).length
    const minted = await exchanges()
    const err = await f(url, init()).then(() => undefined, (e: unknown) => e as MandateError)
    expect(err).toMatchObject({ code: 'INVALID_RESPONSE', detail: { status: 307 } })
    expect(posts).toBe(1)
    expect(await exchanges()).toBe(minted + 1)
    expect((await world.reports({})).length).toBe(before)
  })
})
