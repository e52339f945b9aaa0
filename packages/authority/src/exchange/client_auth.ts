/**
 * Client authentication (RFC 7523 private_key_jwt; no shared secrets) and DPoP proofs of the
 * authenticated client's key (RFC 9449) at the Authority's endpoints.
 */
import {
  b64uDecode, CLIENT_ASSERTION_TYPE, MAX_PROOF_LENGTH, cryptoBackend, MandateError, publicJwkFromDidKey, verifyClientAssertion, verifyProof,
  type PublicKeyHandle, type VerifiedProof,
} from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
import { admitPrincipal } from './principals.js'
import type { AgentRecord } from '../types.js'

const handles = new Map<string, PublicKeyHandle>()

/** The verification key behind a did:key. */
function importDidKey(did: string): PublicKeyHandle {
  return cryptoBackend.importPublic(b64uDecode(publicJwkFromDidKey(did).x, 'DID_INVALID'))
}

export interface ClientCredentials {
  assertionType?: string
  assertion?: string
  clientId?: string
}

/**
 * Authenticate a registered, enabled, unrevoked principal by its client assertion. Every refusal
 * is INVALID_CLIENT (CAPACITY_EXCEEDED when that principal's single-use budget is full).
 *
 * Order matters for denial of service: the key comes from the did:key itself, so the signature,
 * audience and times are checked first (only the holder of a key learns whether it is registered),
 * then the principal is admitted (admitPrincipal: registered, enabled, unrevoked), and only then
 * is the assertion's jti recorded as used. Strangers' assertions, however many and however well
 * signed, never take a place in the single-use store.
 */
export async function authenticateClient(ctx: AuthorityContext, creds: ClientCredentials, endpoint?: string | readonly string[]): Promise<AgentRecord> {
  if (creds.assertionType === undefined && creds.assertion === undefined) {
    throw new MandateError('INVALID_CLIENT', 'client authentication is required (private_key_jwt client assertion)')
  }
  if (creds.assertionType !== CLIENT_ASSERTION_TYPE) throw new MandateError('INVALID_CLIENT', 'client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
  if (creds.assertion === undefined) throw new MandateError('INVALID_CLIENT', 'client_assertion is required')
  let key: PublicKeyHandle | undefined
  let claimed: string | undefined
  let agent: AgentRecord | undefined
  let capacity: MandateError | undefined
  let id: string
  try {
    id = await verifyClientAssertion(creds.assertion, {
      audiences: [ctx.issuer, ...(endpoint === undefined ? [] : typeof endpoint === 'string' ? [endpoint] : endpoint)],
      now: nowSec(ctx),
      skew: ctx.limits.skew,
      resolveClientKey: (clientId) => {
        claimed = clientId
        return (key = handles.get(clientId) ?? importDidKey(clientId))
      },
      // core calls this last, after the signature, audience, times and jti shape passed
      replay: {
        use: async (k, expiresAt) => {
          agent = await admitPrincipal(ctx.store, claimed, { now: ctx.now() }).catch((err: unknown) => {
            // a store that cannot be read is not the client's fault: 503, not invalid_client
            if (MandateError.is(err) && (err.code === 'STORE_UNAVAILABLE' || err.code === 'STORE_ERROR')) capacity = err
            throw err
          })
          try {
            return await ctx.singleUse.use(agent.did, k, expiresAt)
          } catch (err) {
            capacity = MandateError.is(err) ? err : new MandateError('STORE_UNAVAILABLE', 'the single-use store failed', { cause: err })
            throw capacity
          }
        },
      },
    })
  } catch (err) {
    // verifyClientAssertion reports every failure as INVALID_CLIENT; a full budget or a failed store is not the client's fault
    throw capacity ?? err
  }
  if (!agent || agent.did !== id) throw new MandateError('INVALID_CLIENT', 'client authentication failed')
  if (creds.clientId !== undefined && creds.clientId !== id) throw new MandateError('INVALID_CLIENT', 'client_id does not match the client assertion issuer')
  // only registered principals' keys are cached (strangers cannot churn the cache)
  if (key && !handles.has(id)) {
    if (handles.size > 10_000) handles.clear()
    handles.set(id, key)
  }
  return agent
}

/**
 * A refusal of the DPoP proof itself, whatever check refused it (its JWS syntax, `typ`, `alg`, key,
 * signature, binding): RFC 9449 §5 answers every invalid proof at the token endpoint with
 * `invalid_dpop_proof`. The code (`mandate_code`) and message stay as they were; `detail.dpop`
 * tells the error mapping. Store and capacity failures (5xx, 429) and nonce demands pass unchanged.
 */
export function dpopProofError(err: unknown): unknown {
  if (!MandateError.is(err) || err.status >= 500 || err.status === 429 || err.oauthError === 'invalid_dpop_proof' || err.code === 'NONCE_REQUIRED') return err
  return new MandateError(err.code, err.message, { detail: { ...(err.detail ?? {}), dpop: true }, cause: err })
}

/** Verify the DPoP proof of a token-endpoint request: signed by `jkt`, for POST to the endpoint, fresh, unused. */
export async function verifyHolderProof(ctx: AuthorityContext, proof: string | undefined, options: { url: URL; jkt: string; principal: string }): Promise<VerifiedProof> {
  if (proof === undefined) throw new MandateError('PROOF_MISSING', 'a DPoP proof signed by the client key is required')
  const nonce = ctx.nonce
  return verifyProof(proof, {
    jkt: options.jkt,
    method: 'POST',
    url: options.url,
    // proofs are checked only for an authenticated client and must be signed by its key (jkt is
    // compared before the key is imported); the jti is recorded last, under that client's budget
    replay: { use: (k, expiresAt) => ctx.singleUse.use(options.principal, k, expiresAt) },
    now: nowSec(ctx),
    skew: 5,
    ...(nonce ? { nonce: (n: string | undefined) => nonce.check(n) } : {}),
  }).catch((err: unknown) => {
    throw dpopProofError(err)
  })
}

/**
 * RFC 9449 §8 before anything single-use is spent: when the Authority demands DPoP nonces and the
 * request's proof carries none or a stale one, answer `use_dpop_nonce` now — before the client
 * assertion (or a foreign token) is recorded as used — so the client can retry the same request
 * with a fresh proof. Only the nonce claim is read here; the proof is verified in full later (a
 * proof that does not even decode is left to that check).
 */
export function demandFreshNonce(ctx: AuthorityContext, proof: string | undefined): void {
  const source = ctx.nonce
  // anything malformed is left to the full proof verification, which refuses it with its own code
  if (!source || typeof proof !== 'string' || proof.length > MAX_PROOF_LENGTH) return
  const parts = proof.split('.')
  if (parts.length !== 3) return
  let nonce: unknown
  try {
    const payload: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b64uDecode(parts[1] as string, 'PROOF_INVALID')))
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return
    nonce = (payload as Record<string, unknown>).nonce
  } catch {
    return
  }
  if (!source.check(typeof nonce === 'string' ? nonce : undefined)) throw new MandateError('NONCE_REQUIRED', 'a fresh DPoP nonce is required')
}
