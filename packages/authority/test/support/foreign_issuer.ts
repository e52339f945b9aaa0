/**
 * A local external issuer for federation tests: a node:http server on 127.0.0.1 serving OpenID
 * Connect Discovery (`/.well-known/openid-configuration`) and its JWKS (`/jwks`), with real RS256,
 * ES256 and EdDSA keys made by jose, key rotation (`rotate`) and removal (`retire`), and mint
 * helpers producing tokens with the exact claim sets the platforms document. Platforms (GitHub,
 * a Kubernetes cluster, SPIRE, an enterprise IdP) are not reachable from tests, so their tokens are
 * minted here, under this issuer's own `iss` URL, with their documented shapes.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

export type IssuerAlg = 'RS256' | 'ES256' | 'EdDSA'

export interface IssuerKey {
  kid: string
  alg: IssuerAlg
  privateKey: CryptoKey
  publicJwk: JWK
}

/** What to sign with and how: every mint helper takes these. */
export interface MintOptions {
  alg?: IssuerAlg
  /** Sign with this key (default: the newest key of `alg`). */
  kid?: string
  /** Claims to add or replace (`undefined` removes a claim). */
  claims?: Record<string, unknown>
  /** Header members to add or replace (`undefined` removes one, e.g. `{ typ: undefined }`). */
  header?: Record<string, unknown>
  /** Seconds since the epoch (default: the issuer's clock). */
  now?: number
  /** Lifetime in seconds (default per token kind). */
  lifetime?: number
}

export interface ForeignIssuer {
  /** `http://127.0.0.1:PORT` plus the optional path: the `iss` of every token it mints. */
  issuer: string
  jwksUri: string
  /** Keys published now. */
  keys(): IssuerKey[]
  /** How many times `/jwks` and the discovery document were fetched. */
  hits: { jwks: number; discovery: number }
  /** Add a new key (the old ones stay published); returns it. */
  rotate(alg?: IssuerAlg): Promise<IssuerKey>
  /** Stop publishing a key (its private half is kept, so tests can mint with it and see the refusal). */
  retire(kid: string): void
  /** Misbehave: `down` answers 503 to everything; `issuer` serves a discovery document naming another issuer. */
  fault: { down: boolean; discoveryIssuer?: string; delayMs?: number }
  /** Sign any claim set. */
  sign(claims: Record<string, unknown>, o?: MintOptions): Promise<string>
  idToken(o?: MintOptions & { aud?: string | string[]; sub?: string; nonce?: string }): Promise<string>
  githubActions(o?: MintOptions & { aud?: string; repository?: string; ref?: string; environment?: string }): Promise<string>
  kubernetes(o?: MintOptions & { aud?: string[]; namespace?: string; serviceAccount?: string }): Promise<string>
  spiffe(o?: MintOptions & { aud?: string[]; spiffeId?: string }): Promise<string>
  idJag(o?: MintOptions & { aud?: string; clientId?: string; resource?: string; scope?: string }): Promise<string>
  close(): Promise<void>
}

let kidSeq = 0

async function makeKey(alg: IssuerAlg): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true })
  const kid = `${alg.toLowerCase()}-${++kidSeq}-${randomUUID().slice(0, 8)}`
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

function apply(base: Record<string, unknown>, over: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...base }
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  return out
}

/**
 * Start a local issuer. `path` makes the issuer `http://127.0.0.1:PORT/PATH` (discovery is then at
 * `/PATH/.well-known/openid-configuration`, OpenID Connect Discovery §4).
 */
export async function startForeignIssuer(options: { path?: string; now?: () => number } = {}): Promise<ForeignIssuer> {
  const published: IssuerKey[] = [await makeKey('RS256'), await makeKey('ES256'), await makeKey('EdDSA')]
  const all = new Map<string, IssuerKey>(published.map((k) => [k.kid, k]))
  const hits = { jwks: 0, discovery: 0 }
  const fault: ForeignIssuer['fault'] = { down: false }
  const path = options.path ? `/${options.path.replace(/^\/+|\/+$/g, '')}` : ''
  const clock = options.now ?? (() => Date.now())
  let issuer = ''

  const server: Server = createServer((req, res) => {
    const answer = (status: number, body: unknown) => {
      const send = () => {
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        res.end(JSON.stringify(body))
      }
      if (fault.delayMs) setTimeout(send, fault.delayMs)
      else send()
    }
    if (fault.down) return answer(503, { error: 'temporarily_unavailable' })
    if (req.url === `${path}/.well-known/openid-configuration`) {
      hits.discovery++
      return answer(200, {
        issuer: fault.discoveryIssuer ?? issuer, jwks_uri: `${issuer}/jwks`,
        id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'], response_types_supported: ['code'], subject_types_supported: ['public'],
      })
    }
    if (req.url === `${path}/jwks`) {
      hits.jwks++
      return answer(200, { keys: published.map((k) => k.publicJwk) })
    }
    answer(404, { error: 'not_found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`

  const nowSec = () => Math.floor(clock() / 1000)
  const pick = (o: MintOptions): IssuerKey => {
    if (o.kid) {
      const k = all.get(o.kid)
      if (!k) throw new Error(`no key ${o.kid}`)
      return k
    }
    const alg = o.alg ?? 'RS256'
    const k = [...all.values()].reverse().find((x) => x.alg === alg && published.includes(x))
    if (!k) throw new Error(`no published ${alg} key`)
    return k
  }
  const sign = async (claims: Record<string, unknown>, o: MintOptions = {}, typ?: string): Promise<string> => {
    const k = pick(o)
    const header = apply({ alg: k.alg, kid: k.kid, ...(typ !== undefined ? { typ } : {}) }, o.header)
    return new SignJWT(apply(claims, o.claims) as JWTPayload).setProtectedHeader(header as { alg: string }).sign(k.privateKey)
  }
  const times = (o: MintOptions, lifetime: number) => {
    const now = o.now ?? nowSec()
    return { iat: now, exp: now + (o.lifetime ?? lifetime) }
  }

  return {
    get issuer() { return issuer },
    get jwksUri() { return `${issuer}/jwks` },
    keys: () => [...published],
    hits,
    fault,
    async rotate(alg: IssuerAlg = 'RS256') {
      const k = await makeKey(alg)
      published.push(k)
      all.set(k.kid, k)
      return k
    },
    retire(kid: string) {
      const i = published.findIndex((k) => k.kid === kid)
      if (i < 0) throw new Error(`no published key ${kid}`)
      published.splice(i, 1)
    },
    sign: (claims, o) => sign(claims, o),

    /**
     * An OpenID Connect ID token (OpenID Connect Core 1.0 §2, "ID Token"): iss, sub, aud, exp,
     * iat, auth_time, nonce (when the request had one), azp (one audience: omitted), plus the
     * standard profile claims name, email, email_verified (§5.1).
     */
    idToken(o = {}) {
      const t = times(o, 600)
      return sign({
        iss: issuer, sub: o.sub ?? '248289761001', aud: o.aud ?? 'host-app-client', ...t, auth_time: t.iat - 30,
        ...(o.nonce !== undefined ? { nonce: o.nonce } : {}), name: 'Alice Example', email: 'alice@example.com', email_verified: true,
      }, o, 'JWT')
    },

    /**
     * A GitHub Actions OIDC token, with the claims GitHub documents ("About security hardening
     * with OpenID Connect", docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect,
     * "Understanding the OIDC token"): header typ JWT, alg RS256, x5t, kid; claims jti, sub
     * (`repo:ORG/REPO:ref:REF`, or `repo:ORG/REPO:environment:NAME` when the job has an
     * environment), environment, aud, ref, sha, repository, repository_owner, actor_id,
     * repository_visibility, repository_id, repository_owner_id, run_id, run_number, run_attempt,
     * runner_environment, actor, workflow, head_ref, base_ref, event_name, ref_type, ref_protected,
     * workflow_ref, workflow_sha, job_workflow_ref, job_workflow_sha, iss, nbf, exp, iat. GitHub's
     * `iss` is https://token.actions.githubusercontent.com; here it is this issuer's URL.
     */
    githubActions(o = {}) {
      const t = times(o, 300)
      const repository = o.repository ?? 'octo-org/octo-repo'
      const ref = o.ref ?? 'refs/heads/main'
      const owner = repository.split('/')[0] as string
      const env = o.environment
      return sign({
        jti: randomUUID(),
        sub: env !== undefined ? `repo:${repository}:environment:${env}` : `repo:${repository}:ref:${ref}`,
        ...(env !== undefined ? { environment: env } : {}),
        aud: o.aud ?? `https://github.com/${owner}`,
        ref, sha: 'e5b8f8f6c5e1a2b3c4d5e6f708192a3b4c5d6e7f', repository, repository_owner: owner,
        actor_id: '12', repository_visibility: 'private', repository_id: '74', repository_owner_id: '65',
        run_id: '5678901234', run_number: '10', run_attempt: '2', runner_environment: 'github-hosted', actor: 'octocat',
        workflow: 'deploy', head_ref: '', base_ref: '', event_name: 'push', ref_type: 'branch', ref_protected: 'true',
        workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`, workflow_sha: 'e5b8f8f6c5e1a2b3c4d5e6f708192a3b4c5d6e7f',
        job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`, job_workflow_sha: 'e5b8f8f6c5e1a2b3c4d5e6f708192a3b4c5d6e7f',
        iss: issuer, nbf: t.iat - 5, exp: t.exp, iat: t.iat,
      }, o.header?.x5t !== undefined ? o : { ...o, header: { x5t: 'cc413527-173f-5a05-976e-9c52b1d7b431', ...o.header } }, 'JWT')
    },

    /**
     * A Kubernetes projected service-account token (Kubernetes docs, "Managing Service Accounts" →
     * bound service account tokens, kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/):
     * header alg RS256 and kid, no typ; claims aud (list), exp, iat, iss, jti, `kubernetes.io`
     * { namespace, node { name, uid }, pod { name, uid }, serviceaccount { name, uid }, warnafter },
     * nbf, sub `system:serviceaccount:NAMESPACE:NAME`.
     */
    kubernetes(o = {}) {
      const t = times(o, 3600)
      const ns = o.namespace ?? 'payments'
      const sa = o.serviceAccount ?? 'billing-agent'
      return sign({
        aud: o.aud ?? ['https://kubernetes.default.svc.cluster.local'], exp: t.exp, iat: t.iat, iss: issuer, jti: randomUUID(),
        'kubernetes.io': {
          namespace: ns,
          node: { name: 'node-1', uid: '58456cb0-dd00-45ed-b797-5578fdceaced' },
          pod: { name: `${sa}-69cbfb9798-jv9gn`, uid: '778a530c-b3f4-47c0-9cd5-ab018fb64f33' },
          serviceaccount: { name: sa, uid: 'a087d5a0-e1dd-43ec-93ac-f13d89cd13af' },
          warnafter: t.iat + 3600,
        },
        nbf: t.iat, sub: `system:serviceaccount:${ns}:${sa}`,
      }, o)
    },

    /**
     * A SPIFFE JWT-SVID (SPIFFE JWT-SVID standard, github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md
     * §2-§3): header alg (RS/ES/PS only) and kid, typ optional (`JWT` or `JOSE`); claims sub (the
     * SPIFFE ID), aud (required), exp (required), iat. `iss` is not required by the standard;
     * SPIRE sets it when its OIDC discovery provider / `jwt_issuer` is configured, as a rule needs.
     */
    spiffe(o = {}) {
      const t = times(o, 300)
      return sign({ sub: o.spiffeId ?? 'spiffe://trust.example.org/ns/payments/sa/billing-agent', aud: o.aud ?? ['mandate'], exp: t.exp, iat: t.iat, iss: issuer }, { alg: 'ES256', ...o }, 'JWT')
    },

    /**
     * An Identity Assertion JWT Authorization Grant (draft-ietf-oauth-identity-assertion-authz-grant
     * §3, "ID-JAG"): header typ `oauth-id-jag+jwt`; claims iss (the IdP), sub, aud (the issuer of
     * the resource's authorization server), client_id (the client at that server), jti, exp, iat,
     * resource, scope, and the optional email.
     */
    idJag(o = {}) {
      const t = times(o, 300)
      return sign({
        iss: issuer, sub: 'U019488227', aud: o.aud ?? 'http://127.0.0.1:7990', client_id: o.clientId ?? 'f53f191f9311af35', jti: randomUUID(),
        exp: t.exp, iat: t.iat, resource: o.resource ?? 'https://tickets.example.com/mcp', scope: o.scope ?? 'tickets.read tickets.history', email: 'alice@example.com',
      }, o, 'oauth-id-jag+jwt')
    },

    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
