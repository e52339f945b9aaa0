import { webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import * as oauth from 'oauth4webapi'
import type { Authority } from '../src/index.js'

export const AUD = 'http://127.0.0.1:7500/mcp'
export const AUD2 = 'http://127.0.0.1:7600/api'

/** An agent identity as a WebCrypto key pair (for oauth4webapi / dpop) plus the same key in core form. */
export async function webKeyPair(): Promise<{ pair: CryptoKeyPair; key: Ed25519Key }> {
  const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair
  const jwk = (await webcrypto.subtle.exportKey('jwk', pair.privateKey)) as { kty: string; crv: string; x: string; d: string }
  return { pair, key: Ed25519Key.fromPrivateJwk({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }) }
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-authority-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A controllable ms clock. */
export function manualClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let t = start
  return { now: () => t, advance: (ms) => void (t += ms) }
}

export const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'], constraints: { amount: { type: 'max' as const, value: 500 } } }]

/** A principal as oauth4webapi sees it: WebCrypto key pair, `private_key_jwt` client, and the core key. */
export interface Principal {
  pair: CryptoKeyPair
  key: Ed25519Key
  client: oauth.Client
  auth: oauth.ClientAuth
}

export async function principal(): Promise<Principal> {
  const { pair, key } = await webKeyPair()
  return {
    pair, key,
    client: { client_id: key.did, token_endpoint_auth_method: 'private_key_jwt' },
    auth: oauth.PrivateKeyJwt(pair.privateKey, { [oauth.modifyAssertion]: (header) => void (header.typ = 'client-authentication+jwt') }),
  }
}

/** A grantor and `agents` registered agents, and a root task mandate (alice, AUD, TOOLS) for the first. */
export async function registerTask(authority: Authority, agents = 1): Promise<{ grantor: Ed25519Key; agents: Ed25519Key[]; root: Awaited<ReturnType<Authority['grant']>> }> {
  const grantor = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'grantor', role: 'grantor' })
  const keys: Ed25519Key[] = []
  for (let i = 0; i < agents; i++) {
    const k = Ed25519Key.generate()
    await authority.registerAgent({ did: k.did, name: `agent-${i}` })
    keys.push(k)
  }
  const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: (keys[0] as Ed25519Key).did, audiences: [AUD], tools: TOOLS })
  return { grantor, agents: keys, root }
}
