/** Federation fixtures for the CLI tests: a workload rule and real ES256 workload tokens signed with node:crypto. */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'

export const CI_ISSUER = 'https://ci.example.test'
export const CI_AUDIENCE = 'https://deploy.example.test/mcp'

/** A CI platform's signing key and its public JWK (as its JWKS publishes it). */
export interface CiPlatform {
  signer: KeyObject
  jwk: Record<string, string>
}

export function ciPlatform(): CiPlatform {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { signer: pair.privateKey, jwk: { ...(pair.publicKey.export({ format: 'jwk' }) as Record<string, string>), kid: 'ci-1', alg: 'ES256', use: 'sig' } }
}

/** An agent rule admitting CI jobs of one repository (inline JWKS). */
export function workloadRule(ci: CiPlatform, id: string, repository: string): Record<string, unknown> {
  return {
    id, kind: 'agent', token: 'workload',
    trust: { issuer: CI_ISSUER, jwks: { keys: [ci.jwk] }, algorithms: ['ES256'] },
    claims: { repository: { exact: repository } },
    agent: { name: 'ci:{repository}', lifetime: 600 },
    template: { audiences: [CI_AUDIENCE], tools: [{ type: 'tool_access', tools: ['deploy.*'] }], maxLifetime: 300 },
  }
}

const b64u = (v: string | Buffer) => Buffer.from(v).toString('base64url')

/** A workload token as the CI platform signs it for `audience` (the Authority's issuer). */
export function workloadToken(ci: CiPlatform, audience: string, repository: string): string {
  const now = Math.floor(Date.now() / 1000)
  const header = b64u(JSON.stringify({ alg: 'ES256', kid: 'ci-1', typ: 'JWT' }))
  const payload = b64u(JSON.stringify({ iss: CI_ISSUER, sub: `repo:${repository}:ref:refs/heads/main`, aud: audience, repository, ref: 'refs/heads/main', iat: now, exp: now + 300, jti: randomUUID() }))
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: ci.signer, dsaEncoding: 'ieee-p1363' })
  return `${header}.${payload}.${b64u(signature)}`
}
