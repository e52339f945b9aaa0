// The MCP transport gives every request the same long-lived AbortSignal; undici adds an abort
// listener to a Request's signal that only goes away when the Request is collected. Mandate's fetch
// must not let thousands of calls pile listeners onto that one signal (a leak, and Node's
// MaxListenersExceededWarning under load), while a caller's abort still cancels the request.
import { getEventListeners } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { reachingPeer } from '../src/client/fetch_with_credentials.js'

let url = ''
let hang = false
const server = createServer((req, res) => {
  if (hang) return // never answer: only an abort ends the request
  req.resume()
  req.on('end', () => res.end('ok'))
})
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

it('many requests on one signal leave no listener on it', async () => {
  const signal = new AbortController().signal
  const send = reachingPeer(fetch)
  for (let i = 0; i < 40; i++) expect(await (await send(url, { method: 'POST', body: '{}', signal })).text()).toBe('ok')
  expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  // the same requests through plain fetch do pile up (what the test guards against)
  for (let i = 0; i < 40; i++) await (await fetch(url, { method: 'POST', body: '{}', signal })).text()
  expect(getEventListeners(signal, 'abort').length).toBeGreaterThan(0)
})

it("the caller's abort still cancels the request, as an abort", async () => {
  hang = true
  try {
    const ctl = new AbortController()
    const pending = reachingPeer(fetch)(url, { method: 'POST', body: '{}', signal: ctl.signal })
    setTimeout(() => ctl.abort(), 50)
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
  } finally {
    hang = false
  }
})
