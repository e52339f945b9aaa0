/**
 * A real OpenID provider on 127.0.0.1 for the demo and its tests: oidc-provider (a certified
 * OpenID Connect implementation) with one public client — the host app — using the authorization
 * code flow with PKCE (S256), signing ID tokens with keys generated at start, and its own small
 * login and consent pages (oidc-provider's development interactions are disabled).
 *
 * Key rotation: oidc-provider reads `jwks` once, when a Provider is constructed. `rotateKeys()`
 * and `retireKey()` therefore build a new Provider with the new key set — on the same storage
 * (sessions, grants, interactions in flight), the same cookie keys and the same accounts — and put
 * it behind the same listener, so the issuer and port stay the same. Requests already being
 * handled finish on the previous instance; every later request, /jwks included, sees the new set.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import Provider, { type Configuration, type InteractionDetails } from 'oidc-provider'
import { CALLBACK_PATH, DEMO_ACCOUNTS, HOST_APP_CLIENT_ID, type IdpAccount } from './accounts.js'
import { consentPage, errorPage, loginPage } from './pages.js'
import { MemoryStore } from './store.js'

/** ID-token signing algorithms the local provider holds keys for. */
export type IdpAlg = 'RS256' | 'ES256'
const ALGS: readonly IdpAlg[] = ['RS256', 'ES256']

export interface StartIdpOptions {
  /** Port on 127.0.0.1 (default 0: an ephemeral one). The issuer is `http://127.0.0.1:PORT`. */
  port?: number
  /** The host app's client id (default `mandate-demo-host`). */
  clientId?: string
  /** Algorithm of the host app's ID tokens (default RS256); keys for both algorithms exist either way. */
  idTokenAlg?: IdpAlg
  /** Who can sign in (default: the demo's accounts, i.e. Alice). */
  accounts?: readonly IdpAccount[]
}

/** A signing key of the provider, as published (no private members). */
export interface PublicSigningKey {
  kid: string
  alg: IdpAlg
  kty: string
  [member: string]: unknown
}

export interface LocalIdp {
  /** `http://127.0.0.1:PORT` */
  readonly issuer: string
  readonly clientId: string
  /** The registered redirect URI (loopback, any port). */
  readonly redirectUri: string
  readonly idTokenAlg: IdpAlg
  /** The published key set, current keys first (what `${issuer}/jwks` serves). */
  jwks(): { keys: PublicSigningKey[] }
  /** kid of the key that signs new tokens of `alg` (default: the client's ID-token algorithm). */
  currentKid(alg?: IdpAlg): string
  /** New keys (one per algorithm) become current; the previous ones stay published to verify tokens already issued. */
  rotateKeys(): Promise<{ kids: string[] }>
  /** Stop publishing a key (tokens it signed no longer verify against the JWKS). The current key of an algorithm cannot be retired. */
  retireKey(kid: string): Promise<void>
  close(): Promise<void>
}

interface SigningKey {
  alg: IdpAlg
  kid: string
  privateJwk: Record<string, unknown>
  publicJwk: PublicSigningKey
}

async function newKey(alg: IdpAlg): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`
  const meta = { kid, alg, use: 'sig' }
  return { alg, kid, privateJwk: { ...(await exportJWK(privateKey)), ...meta }, publicJwk: { ...(await exportJWK(publicKey)), ...meta } as PublicSigningKey }
}

/** Same-length digests, so the comparison time says nothing about the password. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

const MAX_FORM_BYTES = 4096

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_FORM_BYTES) return undefined
    chunks.push(chunk as Buffer)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY',
    // no form-action: it would also govern the redirects after the login post (to the client's callback)
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  })
  res.end(html)
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login)?$/

/** Start the provider on 127.0.0.1. */
export async function startLocalIdp(options: StartIdpOptions = {}): Promise<LocalIdp> {
  const clientId = options.clientId ?? HOST_APP_CLIENT_ID
  const idTokenAlg = options.idTokenAlg ?? 'RS256'
  const accounts = options.accounts ?? DEMO_ACCOUNTS
  const redirectUri = `http://127.0.0.1${CALLBACK_PATH}`
  const store = new MemoryStore()
  const cookieKeys = [randomBytes(32).toString('base64url')]
  let keys: SigningKey[] = await Promise.all(ALGS.map(newKey))

  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const configuration = (): Configuration => ({
    adapter: store.adapter,
    clients: [{
      client_id: clientId,
      // a native (public) client: loopback redirect URIs match on any port (RFC 8252 §7.3)
      application_type: 'native',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: idTokenAlg,
    }],
    jwks: { keys: keys.map((k) => k.privateJwk) },
    // the authorization code flow only: no implicit or hybrid response types at all
    responseTypes: ['code'],
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: false } },
    // public clients must use PKCE anyway; required for every client here (oidc-provider v9: S256 only)
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    // the host app exchanges the ID token itself: it carries the profile and email claims granted
    conformIdTokenClaims: false,
    cookies: { keys: cookieKeys },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    clientBasedCORS: () => false,
    findAccount: async (_ctx, sub) => {
      const a = accounts.find((x) => x.sub === sub)
      if (!a) return undefined
      return { accountId: a.sub, claims: () => ({ sub: a.sub, name: a.name, email: a.email, email_verified: a.emailVerified }) }
    },
    renderError: (ctx, out) => {
      ctx.type = 'html'
      ctx.body = errorPage(String(out.error ?? 'error'), String(out.error_description ?? ''))
    },
  })

  let provider = new Provider(issuer, configuration())
  let handler = provider.callback()
  const restart = () => {
    provider = new Provider(issuer, configuration())
    handler = provider.callback()
  }

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, login: boolean): Promise<void> {
    const p = provider
    let details: InteractionDetails
    try {
      details = await p.interactionDetails(req, res)
    } catch {
      // unknown, expired, or bound to another browser (the interaction cookie)
      return send(res, 400, errorPage('Sign-in expired', 'This sign-in is no longer valid. Start again from the app.'))
    }
    if (details.uid !== uid) return send(res, 400, errorPage('Sign-in expired', 'This sign-in is no longer valid. Start again from the app.'))
    const prompt = details.prompt.name
    if (prompt === 'login') {
      if (!login) {
        if (req.method !== 'GET') return send(res, 405, errorPage('Not allowed', ''))
        return send(res, 200, loginPage(uid, clientId))
      }
      if (req.method !== 'POST') return send(res, 405, errorPage('Not allowed', ''))
      const form = await readForm(req)
      const username = form?.get('username') ?? ''
      const password = form?.get('password') ?? ''
      const account = accounts.find((a) => a.username === username)
      // the password is compared even for an unknown user: the same work either way
      const ok = sameSecret(password, account?.password ?? randomBytes(16).toString('hex')) && account !== undefined
      if (!ok) return send(res, 401, loginPage(uid, clientId, 'Invalid username or password.'))
      return p.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false })
    }
    if (prompt === 'consent') {
      if (details.params.client_id !== clientId || !details.session?.accountId) return send(res, 403, consentPage(String(details.params.client_id ?? '?')))
      // the demo's host app is first-party: consent to what it asked is given here, recorded as a Grant
      const grant = details.grantId ? await p.Grant.find(details.grantId) : new p.Grant({ accountId: details.session.accountId, clientId })
      if (!grant) return send(res, 400, errorPage('Sign-in expired', 'Start again from the app.'))
      const missing = details.prompt.details
      if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
      if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims)
      for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '))
      const grantId = await grant.save()
      return p.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true })
    }
    return send(res, 400, errorPage('Unsupported step', 'This provider only signs people in.'))
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const m = INTERACTION.exec(path)
    if (!m) return handler(req, res)
    interaction(req, res, m[1] as string, m[2] !== undefined).catch(() => {
      if (!res.headersSent) send(res, 500, errorPage('Something went wrong', 'Start again from the app.'))
      else res.end()
    })
  })

  return {
    issuer,
    clientId,
    redirectUri,
    idTokenAlg,
    jwks: () => ({ keys: keys.map((k) => ({ ...k.publicJwk })) }),
    currentKid(alg = idTokenAlg) {
      const k = keys.find((x) => x.alg === alg)
      if (!k) throw new Error(`no ${alg} key`)
      return k.kid
    },
    async rotateKeys() {
      const fresh = await Promise.all(ALGS.map(newKey))
      // oidc-provider signs with the first key of an algorithm: the new ones go first
      keys = [...fresh, ...keys]
      restart()
      return { kids: fresh.map((k) => k.kid) }
    },
    async retireKey(kid) {
      const k = keys.find((x) => x.kid === kid)
      if (!k) throw new Error('no such key')
      if (keys.find((x) => x.alg === k.alg) === k) throw new Error('the current key of an algorithm cannot be retired; rotate first')
      keys = keys.filter((x) => x !== k)
      restart()
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
