/**
 * Client authentication (RFC 7523 private_key_jwt; no shared secrets) and DPoP proofs of the
 * authenticated client's key (RFC 9449) at the Authority's endpoints.
 */
import {
  b64uDecode, CLIENT_ASSERTION_TYPE, cryptoBackend, MandateError, publicJwkFromDidKey, verifyClientAssertion, verifyProof,
  type PublicKeyHandle, type VerifiedProof,
} from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
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

/** Authenticate a registered, enabled principal by its client assertion. Every failure is INVALID_CLIENT. */
export async function authenticateClient(ctx: AuthorityContext, creds: ClientCredentials, endpoint?: string): Promise<AgentRecord> {
  if (creds.assertionType === undefined && creds.assertion === undefined) {
    throw new MandateError('INVALID_CLIENT', 'client authentication is required (private_key_jwt client assertion)')
  }
  if (creds.assertionType !== CLIENT_ASSERTION_TYPE) throw new MandateError('INVALID_CLIENT', 'client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
  if (creds.assertion === undefined) throw new MandateError('INVALID_CLIENT', 'client_assertion is required')
  // The key comes from the did:key itself, so the signature is checked before the registry is read:
  // only the holder of a key learns whether it is registered (no probing others' registrations).
  let key: PublicKeyHandle | undefined
  const id = await verifyClientAssertion(creds.assertion, {
    audiences: endpoint === undefined ? [ctx.issuer] : [ctx.issuer, endpoint],
    replay: ctx.replay,
    now: nowSec(ctx),
    skew: ctx.limits.skew,
    resolveClientKey: (clientId) => (key = handles.get(clientId) ?? importDidKey(clientId)),
  })
  if (creds.clientId !== undefined && creds.clientId !== id) throw new MandateError('INVALID_CLIENT', 'client_id does not match the client assertion issuer')
  const agent = await ctx.store.getAgent(id)
  if (!agent) throw new MandateError('INVALID_CLIENT', 'unknown client')
  if (agent.disabled) throw new MandateError('INVALID_CLIENT', 'client is disabled')
  // only registered principals' keys are cached (strangers cannot churn the cache)
  if (key && !handles.has(id)) {
    if (handles.size > 10_000) handles.clear()
    handles.set(id, key)
  }
  return agent
}

/** Verify the DPoP proof of a token-endpoint request: signed by `jkt`, for POST to the endpoint, fresh, unused. */
export async function verifyHolderProof(ctx: AuthorityContext, proof: string | undefined, options: { url: URL; jkt: string }): Promise<VerifiedProof> {
  if (proof === undefined) throw new MandateError('PROOF_MISSING', 'a DPoP proof signed by the client key is required')
  const nonce = ctx.nonce
  return verifyProof(proof, {
    jkt: options.jkt,
    method: 'POST',
    url: options.url,
    replay: ctx.replay,
    now: nowSec(ctx),
    skew: 5,
    ...(nonce ? { nonce: (n: string | undefined) => nonce.check(n) } : {}),
  })
}
