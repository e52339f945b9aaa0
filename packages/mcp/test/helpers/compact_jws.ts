/**
 * A compact JWS (mandate, call credential, proof, assertion) anywhere in a text: a base64url JSON
 * header (`eyJ…`), a dot, a payload. A bare `/eyJ/` also matches random base64url ids and hashes
 * (about one in 260,000 positions), which made the "no token in the log" checks flaky.
 */
export const COMPACT_JWS = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/
