/**
 * @mandate/core — agent identities, mandates, call proofs, the narrowing rulebook and the Guard.
 * @packageDocumentation
 */
export { MandateError, ERROR_CODES, isMandateErrorCode, mandateErrorFromJSON, asMandateError } from './errors.js'
export type { MandateErrorCode, OAuthErrorCode, MandateErrorOptions } from './errors.js'

export { b64uEncode, b64uDecode } from './encoding/base64url.js'
export { parseStrictJson, parseStrictJsonObject, DEFAULT_JSON_LIMITS } from './encoding/strict_json.js'
export type { JsonValue, JsonObject, StrictJsonLimits } from './encoding/strict_json.js'

export { Ed25519Key, generateAgentKey, importAgentKey } from './identity/key.js'
export { parsePublicJwk, publicJwkFromRaw } from './identity/jwk.js'
export type { Ed25519PublicJwk, Ed25519PrivateJwk } from './identity/jwk.js'
export { jwkThumbprint, jwkThumbprintUri } from './identity/thumbprint.js'
export { didKeyFromPublicJwk, didKeyFromRaw, publicJwkFromDidKey, isDidKey } from './identity/did_key.js'
export { assertStrongPublicKey } from './identity/point.js'

export { parseCompactJws, signCompactJws, typMatches, ACCEPTED_ALGS, EMITTED_ALG } from './jws/compact.js'
export type { CompactJwsPolicy, ParsedJws } from './jws/compact.js'
export { importJwks, createLocalKeySet, createRemoteKeySet, MAX_JWKS_KEYS } from './keys/key_set.js'
export type { LocalKeySetOptions } from './keys/key_set.js'
export type { JsonWebKeySet, KeyResolver, VerificationKey, RemoteKeySetOptions } from './keys/key_set.js'

export {
  MANDATE_TYP, TOOL_ACCESS_TYPE, MAX_DEPTH_LIMIT, MAX_MANDATE_LENGTH,
  parseMandateClaims, parseToolGrant, parseBudget, assertAudience, audienceList, actorChain, actorDepth,
  AUDIENCE_CREDENTIAL, MAX_OFFLINE_HOPS, parseOfflineClaim,
} from './mandate/claims.js'
export type { MandateClaims, ActorClaim, ToolGrant, DelegationRecord, CallBinding, ApprovalClaim, Budget, OfflineClaim } from './mandate/claims.js'
export { verifyMandate, signMandate, decodeMandateUnverified, checkTimes, nowSeconds, MAX_SKEW_SECONDS, DEFAULT_SKEW_SECONDS } from './mandate/verify.js'
export type { VerifyMandateOptions, VerifiedMandate } from './mandate/verify.js'
export { argumentsDigest, tokenHash } from './mandate/args_digest.js'
export { snapshotArguments, DEFAULT_ARGUMENT_LIMITS } from './mandate/args_snapshot.js'
export { keptArguments } from './mandate/args_kept.js'
export { assertChainConsistent, assertLifetimeWithin, didKeyThumbprint, DEFAULT_LIFETIME_CAPS, lifetimeCaps, lifetimeKind } from './mandate/chain_rules.js'
export type { LifetimeCaps } from './mandate/chain_rules.js'
export type { ArgumentLimits } from './mandate/args_snapshot.js'
export { randomId } from './mandate/ids.js'

export { parseScope, formatScope, assertScopesNarrow } from './narrowing/scopes.js'
export { toolMatches, patternCovers, patternsOverlap, isToolName } from './narrowing/tools.js'
export {
  defaultConstraintRegistry, createConstraintRegistry, parseConstraintMap, constraintNarrows,
  assertConstraintsNarrow, assertArgumentsSatisfy, argumentAt, isSafePath,
} from './narrowing/constraints.js'
export type { Constraint, ConstraintMap, ConstraintComparator, ConstraintRegistry } from './narrowing/constraints.js'
export { narrowMandate, buildRootMandate, DEFAULT_CALL_LIFETIME, DEFAULT_MAX_MANDATE_LIFETIME, DEFAULT_AUDIENCE_LIFETIME } from './narrowing/narrow.js'
export { narrowToTemplate } from './narrowing/template.js'
export type { GrantTemplate, TemplateRequest, TemplatedGrant } from './narrowing/template.js'
export type { NarrowingRequest, DelegationRequest, CallRequest, AudienceRequest, NarrowingContext, RootGrantRequest } from './narrowing/narrow.js'
export {
  attenuateMandate, verifyOfflineChain, decodeOfflineChainUnverified, isOfflineChain, createOfflineChainCache, isHopJti, randomHopId,
  HOP_JTI_LENGTH, HOP_TYP, CHAIN_SEPARATOR, MAX_CHAIN_HOPS, MAX_CHAIN_LENGTH, DEFAULT_CHAIN_CACHE_ENTRIES,
} from './attenuation/index.js'
export type {
  AttenuateOptions, VerifyOfflineChainOptions, VerifiedOfflineChain, OfflineHop, DecodedLink, HopKind, OfflineChainCache,
} from './attenuation/index.js'

export { createProof, verifyProof, normalizeHtu, PROOF_TYP, MAX_PROOF_LENGTH, DEFAULT_PROOF_MAX_AGE } from './proof/proof.js'
export type { CreateProofOptions, VerifyProofOptions, VerifiedProof } from './proof/proof.js'
export { createClientAssertion, verifyClientAssertion, CLIENT_ASSERTION_TYP, CLIENT_ASSERTION_TYPE } from './client_auth/assertion.js'
export type { VerifyClientAssertionOptions } from './client_auth/assertion.js'

export { MemoryReplayStore, replayAnswer } from './stores/replay.js'
export type { ReplayStore, MemoryReplayStoreOptions } from './stores/replay.js'
export { MemoryRevocationList } from './stores/revocation.js'
export type { RevocationSource, RevocationQuery, RevocationEntries } from './stores/revocation.js'
export { createRevocationStatusClient, parseRevocationStatusDocument } from './stores/revocation_status.js'
export type { RevocationStatusDocument, RevocationStatusClientOptions, RevocationStatusClient } from './stores/revocation_status.js'
export { fetchBounded, readBounded, safeUrl } from './http/bounded_fetch.js'
export type { BoundedFetchOptions, BoundedResponse } from './http/bounded_fetch.js'
export { isLoopbackHost, isSecureTransportUrl, requireSecureUrl } from './http/transport_url.js'
export type { RequireSecureUrlOptions } from './http/transport_url.js'

export { createGuard } from './guard/guard.js'
export { createRemoteGuard } from './guard/remote_guard.js'
export type { RemoteGuardOptions } from './guard/remote_guard.js'
export type { Guard, GuardOptions, VerifiedCall, HttpCallInput, ToolCallInput, HeaderBag, CallMode } from './guard/guard.js'
export { MandateCache, DEFAULT_MANDATE_CACHE_ENTRIES, DEFAULT_MANDATE_CACHE_BYTES } from './guard/mandate_cache.js'
export type { CachedMandate, MandateCacheOptions } from './guard/mandate_cache.js'
export { createNonceSource } from './guard/nonce.js'
export type { NonceSource } from './guard/nonce.js'
export { createSharedNonceSource } from './guard/shared_nonce.js'
export type { SharedNonceSourceOptions, NonceSecret } from './guard/shared_nonce.js'
export { challengeFor } from './guard/challenge.js'
export { traceGuard } from './observability/trace_guard.js'
export type { TracerLike, SpanLike } from './observability/trace_guard.js'
export type { ChallengeOptions } from './guard/challenge.js'
export { backend as cryptoBackend } from './crypto/backend.js'
export type { PublicKeyHandle } from './crypto/backend.js'
export type { AuthorityClient, DelegateParams, CallCredentialParams, AudienceCredentialParams, OfflineHopSummary, IssuedToken, CallCredentialResult, ApprovalOutcome, CallReport } from './client/authority_client.js'
export { createHttpAuthorityClient, AUDIENCE_CREDENTIAL_TOKEN_TYPE } from './client/http_client.js'
export { createAudienceCredentialCache, grantRequiresPerCall } from './client/audience_cache.js'
export type { AudienceCredentialCache, AudienceCredentialCacheOptions, CachedAudienceCredential } from './client/audience_cache.js'
export type { HttpAuthorityClientOptions } from './client/http_client.js'
export { metadataUrl, fetchAuthorityMetadata } from './client/metadata.js'
export type { AuthorityMetadata, FetchAuthorityMetadataOptions } from './client/metadata.js'
