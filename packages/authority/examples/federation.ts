import { createProof, Ed25519Key } from '@mandate/core'
import { createAuthority } from '@mandate/authority'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export async function federation(): Promise<string> {
  // stands in for a CI platform's OIDC issuer (GitHub Actions): its key and one job's token
  const platform = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(platform.publicKey)), kid: 'ci-1', alg: 'RS256' }
  const now = Math.floor(Date.now() / 1000)
  const jobToken = await new SignJWT({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app', ref: 'refs/heads/main', jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'RS256', kid: 'ci-1', typ: 'JWT' })
    .setIssuer('https://token.actions.githubusercontent.com').setAudience('http://127.0.0.1:7400')
    .setIssuedAt(now).setExpirationTime(now + 300).sign(platform.privateKey)

  const authority = await createAuthority({
    issuer: 'http://127.0.0.1:7400',
    federation: {
      rules: [{
        id: 'ci-deploy', kind: 'agent', token: 'workload',
        trust: { issuer: 'https://token.actions.githubusercontent.com', jwks: { keys: [jwk] }, algorithms: ['RS256'] }, // or discovery: true
        claims: { repository: { exact: 'acme/app' }, ref: { exact: 'refs/heads/main' } },
        agent: { name: 'ci:{repository}', lifetime: 3600 },
        template: { audiences: ['http://127.0.0.1:7500/mcp'], tools: [{ type: 'tool_access', tools: ['deploy.staging'] }], maxLifetime: 1800 },
      }],
    },
  })

  // the job's own fresh key: no registration, no static secret — its platform token and a DPoP proof
  const key = Ed25519Key.generate()
  const res = await authority.token(
    { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jobToken },
    { dpop: createProof(key, { method: 'POST', url: authority.endpoints.token }) },
  )
  const agent = await authority.getAgent(key.did)
  await authority.close()
  return `${agent?.name} (${agent?.binding?.sub}) holds a ${res.token_type} mandate for ${res.scope ?? 'its tools'}`
}
