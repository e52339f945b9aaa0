import { createRemoteKeySet, decodeMandateUnverified, MandateError, verifyMandate, type JsonObject } from '@mandate/core'
import { readFile } from 'node:fs/promises'
import { EXIT, refused, usageError } from '../cli_error.js'
import { chainOf, formatChain, type ChainView } from '../chain.js'
import { onePositional, requiredStr, str, type Command } from '../command.js'
import { isoTime, shortDid, type Io } from '../io.js'

async function tokenArg(positionals: string[]): Promise<string> {
  const arg = onePositional(positionals, '<token> (or - to read it from stdin, or @FILE)')
  let token = arg
  if (arg === '-') token = await readStdin()
  else if (arg.startsWith('@')) token = await readFile(arg.slice(1), 'utf8').catch(() => {
    throw usageError(`cannot read ${arg.slice(1)}`)
  })
  return token.trim()
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length
    if (size > 64 * 1024) throw usageError('token on stdin is too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function printClaims(io: Io, header: JsonObject, payload: JsonObject, chain: ChainView, status: string): void {
  const p = payload as Record<string, unknown>
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined)
  io.out(status)
  io.out(`chain     ${formatChain(chain, shortDid)}`)
  io.out(`subject   ${String(p.sub)}`)
  io.out(`actor     ${String(p.client_id)}`)
  io.out(`task      ${String(p.txn)}${typeof p.purpose === 'string' ? `  "${p.purpose}"` : ''}`)
  io.out(`issuer    ${String(p.iss)}`)
  io.out(`audience  ${Array.isArray(p.aud) ? p.aud.join(', ') : String(p.aud)}`)
  if (typeof p.scope === 'string') io.out(`scope     ${p.scope}`)
  io.out(`jti       ${String(p.jti)}`)
  io.out(`issued    ${isoTime(num(p.iat))}`)
  io.out(`expires   ${isoTime(num(p.exp))}`)
  io.out(`key       ${String(header.kid)} (${String(header.alg)}, typ ${String(header.typ)})`)
  if (typeof p.cnf === 'object' && p.cnf !== null) io.out(`bound to  jkt ${String((p.cnf as Record<string, unknown>).jkt)}`)
  const d = p.delegation as Record<string, unknown> | undefined
  if (d && typeof d === 'object') io.out(`depth     ${String(d.depth)} of max ${String(d.max_depth)}${d.parent ? `, parent ${String(d.parent)}` : ''}`)
  if (Array.isArray(p.authorization_details)) {
    for (const g of p.authorization_details as Record<string, unknown>[]) {
      io.out(`tools     ${Array.isArray(g.tools) ? g.tools.join(', ') : '?'}${g.constraints ? `  constraints ${JSON.stringify(g.constraints)}` : ''}`)
    }
  }
  if (p.call && typeof p.call === 'object') {
    const c = p.call as Record<string, unknown>
    io.out(`call      ${String(c.tool)} args#${String(c.args).slice(0, 12)}`)
  }
  if (p.approval && typeof p.approval === 'object') {
    const a = p.approval as Record<string, unknown>
    io.out(`approval  ${String(a.id)} by ${String(a.approver)} at ${isoTime(num(a.approved_at))}`)
  }
  if (p.budget) io.out(`budget    ${JSON.stringify(p.budget)}`)
  if (p.max_uses !== undefined) io.out(`max uses  ${String(p.max_uses)}`)
}

function decode(token: string): { header: JsonObject; payload: JsonObject } {
  try {
    return decodeMandateUnverified(token)
  } catch (err) {
    const code = MandateError.is(err) ? err.code : 'TOKEN_MALFORMED'
    throw refused(`not a mandate: ${MandateError.is(err) ? err.message : 'cannot decode'}`, code)
  }
}

export const tokenInspect: Command = {
  path: ['token', 'inspect'],
  summary: 'Decode a mandate or call credential and show its claims and delegation chain. Does NOT verify it.',
  args: '<token|-|@FILE>',
  details: 'Examples:\n  mandate token inspect eyJhbGciOi...\n  pbpaste | mandate token inspect - --json',
  options: {},
  async run({ positionals, io }) {
    const { header, payload } = decode(await tokenArg(positionals))
    const chain = chainOf(payload)
    if (io.json) {
      io.out(JSON.stringify({ verified: false, header, claims: payload, chain }, null, 2))
      return EXIT.OK
    }
    printClaims(io, header, payload, chain, 'UNVERIFIED (decoded only; use `mandate token verify` to check it)')
    return EXIT.OK
  },
}

export const tokenVerify: Command = {
  path: ['token', 'verify'],
  summary: "Verify a mandate against the issuer's JWKS (signature, type, issuer, time, claims) and show its chain.",
  args: '<token|-|@FILE>',
  details:
    'Fetches <issuer>/.well-known/oauth-authorization-server, then its jwks_uri. Checks what can be checked offline;\n' +
    'revocation and proof of possession are checked by guards at call time.\n' +
    'Exit code 1 with the MandateError code when the token is invalid.\n\n' +
    'Example:\n  mandate token verify "$TOKEN" --issuer http://127.0.0.1:7400 --audience http://127.0.0.1:7500/mcp',
  options: {
    issuer: { type: 'string', value: 'URL', description: 'expected issuer (required)' },
    audience: { type: 'string', value: 'URI', description: 'also require this audience' },
  },
  async run({ values, positionals, io }) {
    const issuer = requiredStr(values, 'issuer')
    const audience = str(values, 'audience')
    const token = await tokenArg(positionals)
    const jwksUri = await discoverJwksUri(issuer)
    try {
      const { claims, header } = await verifyMandate(token, { issuer, keys: createRemoteKeySet(jwksUri), ...(audience ? { audience } : {}) })
      const payload = claims as unknown as JsonObject
      const chain = chainOf(payload)
      if (io.json) io.out(JSON.stringify({ valid: true, header, claims, chain }, null, 2))
      else printClaims(io, header, payload, chain, `VALID  signed by ${issuer}`)
      return EXIT.OK
    } catch (err) {
      const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'verification failed')
      if (io.json) {
        io.out(JSON.stringify({ valid: false, code: e.code, message: e.message }, null, 2))
        return EXIT.REFUSED
      }
      throw refused(`INVALID: ${e.message}`, e.code)
    }
  },
}

async function discoverJwksUri(issuer: string): Promise<string> {
  let base: URL
  try {
    base = new URL(issuer)
  } catch {
    throw usageError('--issuer must be a URL')
  }
  const url = new URL('/.well-known/oauth-authorization-server', base)
  let res: Response
  try {
    res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) })
  } catch {
    throw refused(`cannot reach ${url.href}`, 'JWKS_UNAVAILABLE')
  }
  if (!res.ok) throw refused(`metadata fetch failed with status ${res.status}`, 'JWKS_UNAVAILABLE')
  const doc = (await res.json().catch(() => ({}))) as { issuer?: unknown; jwks_uri?: unknown }
  if (doc.issuer !== issuer) throw refused('metadata issuer does not match --issuer', 'ISSUER_MISMATCH')
  if (typeof doc.jwks_uri !== 'string') throw refused('metadata has no jwks_uri', 'JWKS_UNAVAILABLE')
  return doc.jwks_uri
}
