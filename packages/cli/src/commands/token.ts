import {
  createLocalKeySet, createRemoteKeySet, decodeMandateUnverified, decodeOfflineChainUnverified, isOfflineChain, isSecureTransportUrl, MandateError, verifyMandate,
  verifyOfflineChain, type JsonObject, type JsonWebKeySet, type KeyResolver, type OfflineHop,
} from '@mandate/core'
import { CliError, EXIT, refused, usageError, type ExitCode } from '../cli_error.js'
import { readBoundedText } from '../bounded_body.js'
import { chainOf, formatChain, type ChainView } from '../chain.js'
import { readLocalText } from '../files.js'
import { onePositional, requiredStr, str, type Command } from '../command.js'
import { isoTime, printable, printableLine, shortDid, type Io } from '../io.js'

/** Tokens are a few KiB; no input path reads more than this. */
const MAX_TOKEN_INPUT = 64 * 1024
/** RFC 8414 metadata is a small JSON document. */
const MAX_METADATA = 64 * 1024

/** The token argument: the token itself, `-` (stdin) or `@FILE`, bounded and trimmed. */
export async function tokenArg(positionals: string[]): Promise<string> {
  const arg = onePositional(positionals, '<token> (or - to read it from stdin, or @FILE)')
  let token = arg
  if (arg === '-') token = await readStdin()
  else if (arg.startsWith('@')) token = await readTokenFile(arg.slice(1))
  return token.trim()
}

async function readTokenFile(path: string): Promise<string> {
  // a wrong path to a large file (or a device) is refused, not loaded
  return readLocalText(path, { maxBytes: MAX_TOKEN_INPUT, what: 'a token', unreadableIsUsage: true })
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length
    if (size > MAX_TOKEN_INPUT) throw usageError(`token on stdin is too large (over ${MAX_TOKEN_INPUT} bytes)`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A claim as printed: absent claims say so (a token from elsewhere may lack any of them), never "undefined". */
function shown(v: unknown): string {
  if (v === undefined) return '(absent)'
  return typeof v === 'string' ? v : JSON.stringify(v)
}

function printClaims(target: Io, header: JsonObject, payload: JsonObject, chain: ChainView, status: string): void {
  // every line shows claims of a token that may be hostile: never let them drive the terminal
  const io = { out: (line: string) => target.out(printableLine(line)) }
  const p = payload as Record<string, unknown>
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined)
  io.out(status)
  io.out(`chain     ${formatChain(chain, shortDid)}`)
  io.out(`subject   ${shown(p.sub)}`)
  // `<issuer>#<sub>`: an identity an external issuer vouched for under a federation rule (docs/federation.md)
  const hash = typeof p.sub === 'string' ? p.sub.indexOf('#') : -1
  if (hash > 0) io.out(`identity  ${(p.sub as string).slice(hash + 1)} at ${(p.sub as string).slice(0, hash)} (federated)`)
  io.out(`actor     ${shown(p.client_id)}`)
  io.out(`task      ${shown(p.txn)}${typeof p.purpose === 'string' ? `  "${p.purpose}"` : ''}`)
  io.out(`issuer    ${shown(p.iss)}`)
  io.out(`audience  ${Array.isArray(p.aud) ? p.aud.join(', ') : shown(p.aud)}`)
  if (typeof p.scope === 'string') io.out(`scope     ${p.scope}`)
  io.out(`jti       ${shown(p.jti)}`)
  io.out(`issued    ${isoTime(num(p.iat))}`)
  io.out(`expires   ${isoTime(num(p.exp))}`)
  io.out(`key       ${shown(header.kid)} (${shown(header.alg)}, typ ${shown(header.typ)})`)
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
  if (p.credential !== undefined) io.out(`credential ${String(p.credential)} (reusable at its one audience with a fresh proof per call)`)
  if (p.offline && typeof p.offline === 'object') io.out(`offline   up to ${String((p.offline as Record<string, unknown>).max_hops)} holder-signed hop(s)`)
  if (Array.isArray(p.authorization_details)) {
    const perCall = (p.authorization_details as Record<string, unknown>[]).filter((g) => g.per_call === true).flatMap((g) => (Array.isArray(g.tools) ? g.tools : []))
    if (perCall.length) io.out(`per call  ${perCall.join(', ')} (only with an Authority-minted call credential)`)
  }
}

/** What one link of an offline chain shows: kind, holder, tools, expiry (of a possibly hostile token). */
interface HopLine {
  kind: string
  holder: string
  tools: string[]
  exp: number | undefined
  jti: string
}

function hopKindOf(p: Record<string, unknown>, previousHolder: unknown): string {
  if (p.call !== undefined) return 'call'
  if (p.credential !== undefined) return 'audience'
  return p.client_id !== previousHolder ? 'delegation' : 'narrowing'
}

function hopLines(root: JsonObject, hops: readonly JsonObject[]): HopLine[] {
  const out: HopLine[] = []
  let previous = (root as Record<string, unknown>).client_id
  for (const h of hops) {
    const p = h as Record<string, unknown>
    const tools = Array.isArray(p.authorization_details)
      ? (p.authorization_details as Record<string, unknown>[]).flatMap((g) => (Array.isArray(g.tools) ? g.tools.map(String) : []))
      : []
    out.push({ kind: hopKindOf(p, previous), holder: String(p.client_id), tools, exp: typeof p.exp === 'number' ? p.exp : undefined, jti: String(p.jti) })
    previous = p.client_id
  }
  return out
}

function printHops(target: Io, lines: readonly HopLine[]): void {
  const io = { out: (line: string) => target.out(printableLine(line)) }
  lines.forEach((h, i) => {
    io.out(`hop ${i + 1}     ${h.kind} → ${shortDid(h.holder)}  tools ${h.tools.join(', ') || '(none)'}  expires ${isoTime(h.exp)}  jti ${h.jti}`)
  })
}

/** A JWKS file (the Authority's `/jwks` document) as a local key set, for offline verification. */
async function jwksFile(path: string): Promise<KeyResolver> {
  const text = await readLocalText(path, { maxBytes: MAX_METADATA, what: 'a JWKS', unreadableIsUsage: true })
  try {
    return createLocalKeySet(JSON.parse(text) as JsonWebKeySet)
  } catch (err) {
    throw usageError(`${path} is not a JWKS: ${MandateError.is(err) ? err.message : 'not JSON'}`)
  }
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
  summary: 'Decode a mandate, call credential or offline chain (root~hop~…) and show its claims, hops and delegation chain. Does NOT verify it unless --jwks is given.',
  args: '<token|-|@FILE>',
  details:
    'An offline chain shows the root mandate, then one line per holder-signed hop (kind, holder, tools, expiry)\n' +
    'and the claims of its last link. With --jwks FILE (the Authority\'s JWKS document) the chain is verified\n' +
    'offline: the root\'s signature, every hop\'s signature, link and narrowing, the hop limit and lifetimes.\n\n' +
    'Examples:\n  mandate token inspect eyJhbGciOi...\n  pbpaste | mandate token inspect - --json\n  mandate token inspect @chain.txt --jwks jwks.json',
  options: {
    jwks: { type: 'string', value: 'FILE', description: "verify offline against this JWKS (the Authority's /jwks document)" },
    issuer: { type: 'string', value: 'URL', description: "with --jwks: the expected issuer (default: the root's iss)" },
  },
  async run({ values, positionals, io }) {
    const token = await tokenArg(positionals)
    const jwks = str(values, 'jwks')
    if (str(values, 'issuer') !== undefined && jwks === undefined) throw usageError('--issuer applies with --jwks')
    if (!isOfflineChain(token)) {
      const { header, payload } = decode(token)
      const chain = chainOf(payload)
      if (jwks !== undefined) return verifyAndPrint(io, token, header, payload, await jwksFile(jwks), str(values, 'issuer') ?? String(payload.iss))
      if (io.json) {
        io.out(JSON.stringify({ verified: false, header, claims: payload, chain }, null, 2))
        return EXIT.OK
      }
      printClaims(io, header, payload, chain, 'UNVERIFIED (decoded only; use `mandate token verify` to check it)')
      return EXIT.OK
    }
    let decoded: ReturnType<typeof decodeOfflineChainUnverified>
    try {
      decoded = decodeOfflineChainUnverified(token)
    } catch (err) {
      throw refused(`not an offline chain: ${MandateError.is(err) ? err.message : 'cannot decode'}`, MandateError.is(err) ? err.code : 'ATTENUATION_INVALID')
    }
    const last = decoded.hops[decoded.hops.length - 1] ?? decoded.root
    const lines = hopLines(decoded.root.payload, decoded.hops.map((h) => h.payload))
    let verified: { hops: OfflineHop[] } | undefined
    if (jwks !== undefined) {
      const keys = await jwksFile(jwks)
      const issuer = str(values, 'issuer') ?? String(decoded.root.payload.iss)
      try {
        verified = await verifyOfflineChain(token, { issuer, keys })
      } catch (err) {
        const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'verification failed')
        const hop = typeof e.detail?.hop === 'number' ? ` (hop ${e.detail.hop})` : ''
        if (io.json) {
          io.out(JSON.stringify({ valid: false, code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}), hops: lines }, null, 2))
          return EXIT.REFUSED
        }
        throw refused(`INVALID${hop}: ${e.message}`, e.code)
      }
    }
    if (io.json) {
      io.out(JSON.stringify({
        ...(verified ? { valid: true } : { verified: false }), root: { header: decoded.root.header, claims: decoded.root.payload, chain: chainOf(decoded.root.payload) },
        hops: verified ? verified.hops : lines, last: { header: last.header, claims: last.payload, chain: chainOf(last.payload) },
      }, null, 2))
      return EXIT.OK
    }
    const status = verified
      ? `VALID offline chain of ${decoded.hops.length} hop(s): root signed by a key in ${jwks ?? ''}, every hop by the key the link before it is bound to; revocation not checked (guards check it at call time)`
      : `UNVERIFIED offline chain of ${decoded.hops.length} hop(s) (decoded only; give --jwks FILE to verify it offline)`
    io.out(printable(status))
    io.out(`root      ${shortDid(String(decoded.root.payload.client_id))}  jti ${printable(String(decoded.root.payload.jti))}  expires ${isoTime(typeof decoded.root.payload.exp === 'number' ? decoded.root.payload.exp : undefined)}`)
    printHops(io, lines)
    printClaims(io, last.header, last.payload, chainOf(last.payload), 'last link:')
    return EXIT.OK
  },
}

async function verifyAndPrint(io: Io, token: string, header: JsonObject, payload: JsonObject, keys: KeyResolver, issuer: string): Promise<ExitCode> {
  try {
    const { claims } = await verifyMandate(token, { issuer, keys })
    if (io.json) io.out(JSON.stringify({ valid: true, header, claims, chain: chainOf(payload) }, null, 2))
    else printClaims(io, header, payload, chainOf(payload), `VALID  signed by a key of the given JWKS (issuer ${issuer}); revocation not checked (guards check it at call time)`)
    return EXIT.OK
  } catch (err) {
    const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'verification failed')
    if (io.json) {
      io.out(JSON.stringify({ valid: false, code: e.code, message: e.message }, null, 2))
      return EXIT.REFUSED
    }
    throw refused(`INVALID: ${e.message}`, e.code)
  }
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
    'insecure-http': { type: 'boolean', description: 'WEAKENS SECURITY: fetch metadata and keys over plain http from a host off this machine' },
  },
  async run({ values, positionals, io }) {
    const issuer = requiredStr(values, 'issuer')
    const insecureAllowHttp = values['insecure-http'] === true
    const audience = str(values, 'audience')
    const token = await tokenArg(positionals)
    const jwksUri = await discoverJwksUri(issuer, insecureAllowHttp)
    try {
      const { claims, header } = await verifyMandate(token, { issuer, keys: createRemoteKeySet(jwksUri, { insecureAllowHttp }), ...(audience ? { audience } : {}) })
      const payload = claims as unknown as JsonObject
      const chain = chainOf(payload)
      if (io.json) io.out(JSON.stringify({ valid: true, header, claims, chain }, null, 2))
      else printClaims(io, header, payload, chain, `VALID  signed by ${issuer}; revocation not checked (guards check it at call time)`)
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

async function discoverJwksUri(issuer: string, insecureAllowHttp: boolean): Promise<string> {
  let base: URL
  try {
    base = new URL(issuer)
  } catch {
    throw usageError('--issuer must be a URL')
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw usageError('--issuer must be an http(s) URL')
  // keys fetched in the clear could be anyone's: a "VALID" from them would mean nothing
  if (!insecureAllowHttp && !isSecureTransportUrl(base)) throw usageError('--issuer must be https (plain http only on localhost, 127.0.0.1 or [::1]; --insecure-http opts out)')
  // RFC 8414 §3: the well-known path goes between the host and the issuer's path
  const path = base.pathname === '/' ? '' : base.pathname.replace(/\/$/, '')
  const url = new URL(`${base.origin}/.well-known/oauth-authorization-server${path}`)
  // one deadline for connecting and reading: a peer that trickles its answer is cut off too
  const signal = AbortSignal.timeout(10_000)
  let res: Response
  try {
    res = await fetch(url, { redirect: 'error', signal })
  } catch {
    throw refused(`cannot reach ${url.href}`, 'AUTHORITY_UNREACHABLE')
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined)
    throw refused(`${url.href} answered HTTP ${res.status}`, 'JWKS_UNAVAILABLE')
  }
  let doc: { issuer?: unknown; jwks_uri?: unknown }
  try {
    doc = JSON.parse(await readBoundedText(res, MAX_METADATA, `the metadata at ${url.href}`)) as typeof doc
  } catch (err) {
    if (err instanceof CliError) throw err
    throw refused(`the metadata at ${url.href} is not JSON`, 'INVALID_RESPONSE')
  }
  if (typeof doc !== 'object' || doc === null) throw refused(`the metadata at ${url.href} is not a JSON object`, 'INVALID_RESPONSE')
  if (doc.issuer !== issuer) throw refused(`metadata issuer ${typeof doc.issuer === 'string' ? doc.issuer.slice(0, 100) : '(none)'} does not match --issuer ${issuer}`, 'ISSUER_MISMATCH')
  if (typeof doc.jwks_uri !== 'string') throw refused('metadata has no jwks_uri', 'JWKS_UNAVAILABLE')
  if (!insecureAllowHttp && !isSecureTransportUrl(doc.jwks_uri)) throw refused('metadata names a jwks_uri that is not https (plain http only on loopback)', 'INVALID_RESPONSE')
  return doc.jwks_uri
}
