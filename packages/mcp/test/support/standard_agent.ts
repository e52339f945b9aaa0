// The agent side of the standard-client interop test (issue #11), built only from independent
// libraries — oauth4webapi (OAuth), dpop (RFC 9449 proofs) — and node built-ins (WebCrypto). Nothing
// here imports @mandate/*: this is what any OAuth-literate agent would write.
import { webcrypto } from 'node:crypto'
import { generateProof } from 'dpop'
import * as oauth from 'oauth4webapi'

/** Every server in the test listens on 127.0.0.1 over plain http. */
export const insecure = { [oauth.allowInsecureRequests]: true } as const

/** An agent as a standard client holds it: a WebCrypto Ed25519 key pair and its did:key as client_id. */
export interface StandardAgent {
  pair: CryptoKeyPair
  did: string
  client: oauth.Client
  /** oauth4webapi's stock RFC 7523 private_key_jwt, as it ships (no `typ` header). */
  auth: oauth.ClientAuth
  /** One DPoP handle per key: oauth4webapi remembers the server's DPoP-Nonce in it (RFC 9449 §8). */
  dpop: oauth.DPoPHandle
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** base58btc (the Bitcoin alphabet), leading zero bytes as '1'. */
function base58btc(bytes: Uint8Array): string {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  let out = ''
  for (; n > 0n; n /= 58n) out = (B58[Number(n % 58n)] as string) + out
  for (const b of bytes) {
    if (b !== 0) break
    out = `1${out}`
  }
  return out
}

/**
 * did:key of an Ed25519 public key, per the did:key method spec (w3c-ccg.github.io/did-method-key,
 * "Ed25519"): the multicodec prefix ed25519-pub (varint 0xed 0x01) followed by the 32-byte raw key,
 * multibase base58btc (prefix `z`).
 */
export async function didKeyOf(publicKey: CryptoKey): Promise<string> {
  const raw = new Uint8Array(await webcrypto.subtle.exportKey('raw', publicKey))
  return `did:key:z${base58btc(new Uint8Array([0xed, 0x01, ...raw]))}`
}

/** A fresh agent: an Ed25519 key from WebCrypto (the private half never leaves it), nothing registered. */
export async function standardAgent(): Promise<StandardAgent> {
  const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
  const did = await didKeyOf(pair.publicKey)
  const client: oauth.Client = { client_id: did, token_endpoint_auth_method: 'private_key_jwt' }
  return { pair, did, client, auth: oauth.PrivateKeyJwt(pair.privateKey), dpop: oauth.DPoP(client, pair) }
}

/** How many token requests were resent with a server-provided nonce. */
export const nonceRetries = { count: 0 }

/**
 * Send a token request and process its answer; if the server demands a DPoP nonce
 * (`use_dpop_nonce`, RFC 9449 §8), send it once more — the DPoP handle has taken the nonce from the
 * answer's `DPoP-Nonce` header. Never more than one retry.
 */
export async function withNonceRetry<T>(send: () => Promise<Response>, process: (res: Response) => Promise<T>): Promise<T> {
  try {
    return await process(await send())
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    nonceRetries.count++
    return process(await send())
  }
}

/** What the MCP server answered to one request (refusals are small JSON bodies). */
export interface Answer {
  status: number
  body?: Record<string, unknown>
}

/**
 * A `fetch` for the MCP SDK's StreamableHTTPClientTransport: while `credential()` names a call
 * credential, each request carries `Authorization: DPoP <credential>` and a fresh plain RFC 9449
 * proof from the `dpop` package (htm, htu, iat, jti, and `ath` tying it to the credential). The
 * guard reads credentials on `tools/call` only; initialize, notifications and tools/list need none.
 */
export function dpopFetch(pair: CryptoKeyPair, credential: () => string | undefined, answers: Answer[]): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers)
    const token = credential()
    if (token !== undefined) {
      const url = input instanceof Request ? input.url : String(input)
      headers.set('authorization', `DPoP ${token}`)
      headers.set('dpop', await generateProof(pair, url, init?.method ?? 'GET', undefined, token))
    }
    const res = await fetch(input, { ...init, headers })
    const answer: Answer = { status: res.status }
    if (res.status >= 400 && res.headers.get('content-type')?.includes('application/json')) answer.body = (await res.clone().json()) as Record<string, unknown>
    answers.push(answer)
    return res
  }
}
