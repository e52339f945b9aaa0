/**
 * The host app's side of "sign in with the OpenID provider", with oauth4webapi only: discovery, an
 * authorization request with PKCE (S256), state and nonce, a one-shot callback server on
 * 127.0.0.1, the code exchange, and the ID token's validation (issuer, audience, nonce, times by
 * oauth4webapi; its signature against the provider's JWKS too, since this is plain http on
 * loopback rather than TLS).
 *
 * Who completes the login is up to the driver, always at the same real provider: a person in their
 * own browser (`startLogin` + print the URL), headless Chromium filling the real form
 * (`loginWithBrowser`), or a scripted user agent posting the same form (`loginScripted`) for runs
 * without a person (CI, no terminal).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import type { Browser } from 'playwright-core'
import { CALLBACK_PATH } from './accounts.js'

export interface LoginTarget {
  /** The provider's issuer (`http://127.0.0.1:PORT`; plain http is accepted only on loopback). */
  issuer: string
  clientId: string
  /** The algorithm the client registered for its ID tokens (default RS256). */
  idTokenAlg?: string
  /** Default `openid profile email`. */
  scope?: string
  /** How long the login may take before it is abandoned (ms, default 5 minutes). */
  timeoutMs?: number
}

export interface LoginResult {
  /** The compact ID token (a credential: never print it). */
  idToken: string
  /** Its validated claims. */
  claims: oauth.IDToken
  /** The nonce the authorization request carried (the Authority checks it again on exchange). */
  nonce: string
}

/** Why a login did not produce an ID token. */
export type LoginFailureReason = 'invalid_credentials' | 'denied' | 'callback' | 'exchange' | 'timeout' | 'flow'

export class LoginFailure extends Error {
  override readonly name = 'LoginFailure'
  constructor(readonly reason: LoginFailureReason, message: string) {
    super(message)
  }
}

export interface PendingLogin {
  /** Where the user agent goes to sign in. */
  readonly authorizationUrl: string
  /** The callback on 127.0.0.1 (ephemeral port) the provider redirects to. */
  readonly redirectUri: string
  /** Settles once the callback was hit (or on timeout); the callback server is closed then. */
  readonly result: Promise<LoginResult>
  close(): Promise<void>
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

function issuerUrl(issuer: string): { url: URL; insecure: boolean } {
  const url = URL.canParse(issuer) ? new URL(issuer) : undefined
  if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname)))) {
    throw new LoginFailure('flow', 'the issuer must be an https URL (http only on loopback)')
  }
  return { url, insecure: url.protocol === 'http:' }
}

const CALLBACK_PAGE = (title: string, text: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body style="font:16px system-ui,sans-serif;margin:3rem"><h1 id="callback-title">${title}</h1><p>${text}</p></body></html>`

/**
 * Discover the provider, open the callback server and prepare the authorization request. The
 * login completes when a user agent brings the provider's redirect to `redirectUri`.
 */
export async function startLogin(t: LoginTarget): Promise<PendingLogin> {
  const { url, insecure } = issuerUrl(t.issuer)
  // a fresh deadline per request: the exchange may come minutes after discovery (a person signing in)
  const http = () => ({ [oauth.allowInsecureRequests]: insecure, signal: AbortSignal.timeout(10_000) })
  const as = await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { ...http(), algorithm: 'oidc' }))
  if (!as.authorization_endpoint) throw new LoginFailure('flow', 'the provider has no authorization endpoint')
  const client: oauth.Client = { client_id: t.clientId, id_token_signed_response_alg: t.idTokenAlg ?? 'RS256' }
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()

  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${CALLBACK_PATH}`
  const auth = new URL(as.authorization_endpoint)
  for (const [k, v] of Object.entries({
    client_id: t.clientId, redirect_uri: redirectUri, response_type: 'code', scope: t.scope ?? 'openid profile email',
    state, nonce, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  })) auth.searchParams.set(k, v)

  let closed = false
  const close = () =>
    new Promise<void>((resolve) => {
      if (closed) return resolve()
      closed = true
      server.close(() => resolve())
      server.closeAllConnections()
    })

  const result = new Promise<LoginResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new LoginFailure('timeout', 'the login did not complete in time'))
      void close()
    }, t.timeoutMs ?? 5 * 60_000)
    let used = false
    server.on('request', (req, res) => {
      const here = new URL(req.url ?? '/', redirectUri)
      if (here.pathname !== CALLBACK_PATH || req.method !== 'GET') {
        res.writeHead(404).end()
        return
      }
      // one callback per login: a second one (replay, a stray tab) changes nothing
      if (used) {
        res.writeHead(410, { 'content-type': 'text/html; charset=utf-8' }).end(CALLBACK_PAGE('Already used', 'This sign-in has completed already.'))
        return
      }
      used = true
      const finish = (status: number, title: string, text: string) => {
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(CALLBACK_PAGE(title, text))
        clearTimeout(timer)
        setImmediate(() => void close())
      }
      complete(here).then(
        (r) => {
          finish(200, 'Signed in', 'You can close this tab and return to the terminal.')
          resolve(r)
        },
        (err: unknown) => {
          finish(400, 'Sign-in failed', 'Return to the terminal for details.')
          reject(err)
        },
      )
    })
  })
  // a login nobody awaits (closed early) must not surface as an unhandled rejection
  result.catch(() => undefined)

  async function complete(callback: URL): Promise<LoginResult> {
    let params: URLSearchParams
    try {
      params = oauth.validateAuthResponse(as, client, callback, state)
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError) throw new LoginFailure('denied', `the provider answered ${err.error}`)
      throw new LoginFailure('callback', 'the callback is not a valid response to this login (state, issuer)')
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, http())
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true })
      // over plain http the transport vouches for nothing: check the ID token's signature (the provider's JWKS)
      await oauth.validateApplicationLevelSignature(as, response, http())
      const claims = oauth.getValidatedIdTokenClaims(tokens)
      if (!claims || !tokens.id_token) throw new LoginFailure('exchange', 'no ID token')
      return { idToken: tokens.id_token, claims, nonce }
    } catch (err) {
      if (err instanceof LoginFailure) throw err
      // oauth4webapi's messages name the failed check, never the token
      throw new LoginFailure('exchange', `the code exchange failed: ${err instanceof Error ? err.message : 'unknown error'}`)
    }
  }

  return { authorizationUrl: auth.href, redirectUri, result, close }
}

export interface Credentials {
  username: string
  password: string
}

/** Wait for the result, or fail as soon as `failed` says the login cannot complete. */
async function settle(pending: PendingLogin, failed: Promise<LoginFailure | undefined>): Promise<LoginResult> {
  return Promise.race([
    pending.result,
    failed.then((f) => {
      if (f) throw f
      return pending.result
    }),
  ])
}

/**
 * Sign in through headless Chromium (playwright-core), filling the provider's real login form.
 * Pass `browser` to reuse one; otherwise Chromium is launched from `chromiumPath` and closed after.
 */
export async function loginWithBrowser(t: LoginTarget & Credentials & { chromiumPath?: string; browser?: Browser }): Promise<LoginResult> {
  const pending = await startLogin(t)
  // playwright-core is loaded only here: the demo itself never needs it (a person uses their own browser)
  const browser = t.browser ?? (await (await import('playwright-core')).chromium.launch({
    executablePath: t.chromiumPath ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  }))
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    await page.goto(pending.authorizationUrl)
    await page.locator('#username').fill(t.username)
    await page.locator('#password').fill(t.password)
    await page.locator('#sign-in').click()
    // either the provider sends the browser to the callback, or it shows the form again with an error
    const refused = page.locator('#login-error').waitFor({ timeout: t.timeoutMs ?? 60_000 }).then(
      () => new LoginFailure('invalid_credentials', 'the provider refused the username or password'),
      () => undefined,
    )
    return await settle(pending, refused)
  } finally {
    await context.close()
    if (!t.browser) await browser.close()
    await pending.close()
  }
}

/** A minimal cookie jar for one origin (the provider's): enough for its session and interaction cookies. */
class CookieJar {
  private readonly cookies = new Map<string, string>()
  constructor(readonly origin: string) {}

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => {
        const [k = '', v = ''] = a.split('=').map((s) => s.trim())
        return (k.toLowerCase() === 'max-age' && Number(v) <= 0) || (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now())
      })
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header(url: URL): Record<string, string> {
    if (url.origin !== this.origin || this.cookies.size === 0) return {}
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
  }
}

const LOGIN_FORM = /<form id="login" method="post" action="(\/interaction\/[A-Za-z0-9_-]{1,64}\/login)"/

/**
 * Sign in without a browser (CI, no terminal): a scripted user agent follows the provider's
 * redirects with a cookie jar and posts the same login form a person would, at the same provider.
 */
export async function loginScripted(t: LoginTarget & Credentials): Promise<LoginResult> {
  const pending = await startLogin(t)
  try {
    const jar = new CookieJar(new URL(t.issuer).origin)
    const callback = new URL(pending.redirectUri)
    let url = new URL(pending.authorizationUrl)
    let body: URLSearchParams | undefined
    for (let hop = 0; hop < 20; hop++) {
      const res = await fetch(url, {
        method: body ? 'POST' : 'GET', redirect: 'manual', signal: AbortSignal.timeout(10_000),
        headers: { ...jar.header(url), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        ...(body ? { body } : {}),
      })
      const posted = body !== undefined
      body = undefined
      if (url.origin === jar.origin) jar.store(res)
      if (url.origin === callback.origin && url.pathname === callback.pathname) {
        await res.arrayBuffer()
        return await pending.result
      }
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer()
        url = new URL(location, url)
        if (url.origin !== jar.origin && url.origin !== callback.origin) throw new LoginFailure('flow', 'the provider redirected somewhere unexpected')
        continue
      }
      const html = await res.text()
      if (posted && res.status === 401) throw new LoginFailure('invalid_credentials', 'the provider refused the username or password')
      const form = res.ok ? LOGIN_FORM.exec(html) : null
      if (!form) throw new LoginFailure('flow', `the provider answered HTTP ${res.status} where a login form was expected`)
      url = new URL(form[1] as string, url)
      body = new URLSearchParams({ username: t.username, password: t.password })
    }
    throw new LoginFailure('flow', 'too many redirects')
  } finally {
    await pending.close()
  }
}
