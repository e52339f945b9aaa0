/**
 * Unknown routes and wrong methods (outside probe, finding 2), over real HTTP on 127.0.0.1: a path
 * no route has is 404 with the standard error body (`mandate_code: NOT_FOUND`) and
 * `Cache-Control: no-store`; a path that exists with other methods is 405 with `Allow` naming them
 * (RFC 9110 §15.5.6), derived from the app's own routes (parameterised paths, routes added by
 * `extend`); HEAD is allowed wherever GET is (Hono answers it with the GET route).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'

let server: AuthorityServer

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1', metrics: true,
    extend: (app) => {
      app.put('/extended/:x', (c) => c.text('put'))
      // a GET route that itself finds nothing: still a 404, never a 405 naming GET
      app.get('/maybe/:x', (c) => c.notFound())
    },
  })
})
afterAll(async () => {
  await server.close()
})

const call = (method: string, path: string) => fetch(`${server.url}${path}`, { method })

async function expectNotFound(res: Response): Promise<void> {
  expect(res.status).toBe(404)
  expect(res.headers.get('cache-control')).toBe('no-store')
  expect(res.headers.get('allow')).toBeNull()
  expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'no such endpoint', mandate_code: 'NOT_FOUND' })
}

async function expectNotAllowed(res: Response, allow: string, body = true): Promise<void> {
  expect(res.status).toBe(405)
  expect(res.headers.get('allow')).toBe(allow)
  expect(res.headers.get('cache-control')).toBe('no-store')
  if (!body) return
  const json = (await res.json()) as Record<string, unknown>
  expect(json).toMatchObject({ error: 'invalid_request', mandate_code: 'METHOD_NOT_ALLOWED' })
  expect(json.error_description).toContain(allow)
}

describe('unknown paths', () => {
  it('are 404 with the standard typed error body and no-store, whatever the method', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/nope'], ['DELETE', '/'], ['GET', '/token/'], ['GET', '/approvals/x/y/z'], ['PATCH', '/admin'], ['GET', '/%FF']]) {
      await expectNotFound(await call(method as string, path as string))
    }
    const head = await call('HEAD', '/nope')
    expect(head.status).toBe(404)
    expect(head.headers.get('cache-control')).toBe('no-store')
  })

  it('a GET route answering notFound itself stays 404 for GET and HEAD, and is 405 for other methods', async () => {
    await expectNotFound(await call('GET', '/maybe/a'))
    expect((await call('HEAD', '/maybe/a')).status).toBe(404)
    await expectNotAllowed(await call('POST', '/maybe/a'), 'GET, HEAD')
  })
})

describe('known paths with another method', () => {
  it('the probe\'s requests are 405 with Allow: POST', async () => {
    for (const method of ['PATCH', 'OPTIONS', 'GET', 'PUT', 'DELETE']) await expectNotAllowed(await call(method, '/token'), 'POST')
    // HEAD of a POST-only path: the same answer without a body
    await expectNotAllowed(await call('HEAD', '/token'), 'POST', false)
  })

  it('parameterised and shared paths list every method they have', async () => {
    await expectNotAllowed(await call('DELETE', '/approvals/abc'), 'GET, HEAD')
    await expectNotAllowed(await call('POST', '/approvals/events'), 'GET, HEAD')
    await expectNotAllowed(await call('GET', `/admin/agents/${encodeURIComponent('did:key:z6MkX')}/disable`), 'POST')
    await expectNotAllowed(await call('PUT', '/admin/agents'), 'GET, HEAD, POST')
    await expectNotAllowed(await call('DELETE', '/audit/verify'), 'GET, HEAD, POST')
    await expectNotAllowed(await call('GET', '/admin/federation/rules/r1'), 'DELETE')
    await expectNotAllowed(await call('GET', '/extended/1'), 'PUT')
    expect(await (await call('PUT', '/extended/1')).text()).toBe('put')
  })

  it('HEAD is served wherever GET is', async () => {
    for (const path of ['/healthz', '/jwks', '/.well-known/oauth-authorization-server', '/metrics']) {
      const res = await call('HEAD', path)
      expect(res.status, path).toBe(200)
      expect(await res.text()).toBe('')
    }
  })

  it('every registered route: another method is 405 and its Allow names the route\'s method (no drift)', async () => {
    const routes = server.app.routes.filter((r) => r.method !== 'ALL')
    expect(routes.length).toBeGreaterThan(20)
    for (const r of routes) {
      const path = r.path.replace(/:[A-Za-z_]+/g, 'x1').replace(/\*/g, 'x2')
      const other = ['PATCH', 'PUT', 'DELETE', 'POST'].find((m) => !routes.some((q) => q.path === r.path && q.method === m)) as string
      const res = await call(other, path)
      expect(res.status, `${other} ${path}`).toBe(405)
      const allow = (res.headers.get('allow') ?? '').split(', ')
      expect(allow, path).toContain(r.method)
      if (r.method === 'GET') expect(allow).toContain('HEAD')
      expect(res.headers.get('cache-control')).toBe('no-store')
      await res.body?.cancel()
    }
  })
})
