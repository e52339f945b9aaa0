/**
 * The members of a public JWK per key type (RFC 7518 §6.2–6.3, RFC 8037 §2), and the private ones
 * (RFC 7518 §6.2.2, §6.3.2, §6.4): one table for the rule parser (pinned keys) and the remote key
 * set filter, so both agree on what a usable public key is.
 */
export const PUBLIC_KEY_MEMBERS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  RSA: Object.freeze(['n', 'e']),
  EC: Object.freeze(['crv', 'x', 'y']),
  OKP: Object.freeze(['crv', 'x']),
})

/** Members only a private (or symmetric) key carries: a key with any of them is never used. */
export const PRIVATE_KEY_MEMBERS: readonly string[] = Object.freeze(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'])

/** The public members of key type `kty`, or undefined for a type we do not verify with. */
export function publicKeyMembers(kty: unknown): readonly string[] | undefined {
  return typeof kty === 'string' && Object.hasOwn(PUBLIC_KEY_MEMBERS, kty) ? PUBLIC_KEY_MEMBERS[kty] : undefined
}
