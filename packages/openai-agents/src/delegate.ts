import { MandateError, type AuthorityClient, type Budget, type ToolGrant } from '@mandate/core'
import { atAuthority, configError, type MandateSource } from '@mandate/core/kernel'

/** Options of {@link delegatedMandate}: what the sub-agent may do, at most. */
export interface DelegatedMandateOptions {
  /** The delegating agent's Authority client (it authenticates as the holder of `mandate`). */
  client: AuthorityClient
  /** The delegating agent's mandate (a token, or the function that gives the current one). */
  mandate: MandateSource
  /** The sub-agent: its did:key, or its key (anything with a `did`). */
  to: string | { readonly did: string }
  audiences?: readonly string[]
  scopes?: readonly string[]
  tools?: readonly ToolGrant[]
  /** Lifetime in seconds (never past the parent's). */
  expiresIn?: number
  /** Further delegations allowed below this one (`0`: the sub-agent cannot delegate). */
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  /** Exchange again this many seconds before the delegated mandate expires (default 30). */
  refreshAheadSeconds?: number
}

/**
 * A narrower mandate for a sub-agent (a handoff's target, or the agent behind `agent.asTool()`), as a
 * `mandate` source for the sub-agent's own `mandateTools`. On first use it asks the Authority for an
 * RFC 8693 token exchange: the Authority only ever narrows (a request wider than the parent's mandate
 * is refused with a `NARROWING_*` code) and appends the delegating agent to the actor chain. The
 * mandate is kept until shortly before it expires, then exchanged again; concurrent first calls share
 * one exchange. A refusal is not cached: the next call asks again.
 *
 * @example
 * ```ts
 * const researcherTools = mandateTools([searchDocs], {
 *   client: researcherClient, key: researcherKey, audience: DOCS, guard: docsGuard,
 *   mandate: delegatedMandate({ client, mandate, to: researcherKey, tools: [{ type: 'tool_access', tools: ['docs.search'] }], maxDepth: 0 }),
 * })
 * const researcher = new Agent({ name: 'researcher', tools: researcherTools, model })
 * const triage = new Agent({ name: 'triage', tools: mandateTools([refund], options), handoffs: [handoff(researcher)], model })
 * ```
 * @throws MandateError `CONFIG_INVALID` for invalid options (here); the function it returns rejects
 * with the Authority's refusal (e.g. `NARROWING_TOOLS`, `NARROWING_DEPTH`) when used.
 */
export function delegatedMandate(options: DelegatedMandateOptions): () => Promise<string> {
  if (typeof options !== 'object' || options === null) throw configError('delegatedMandate options are required')
  const { client } = options
  if (!client || typeof client.delegate !== 'function' || typeof client.issuer !== 'string') throw configError('client must be an AuthorityClient')
  const source = options.mandate
  if (typeof source !== 'function' && (typeof source !== 'string' || source.length === 0)) throw configError('mandate must be a token or a function returning one')
  const to = typeof options.to === 'string' ? options.to : options.to?.did
  if (typeof to !== 'string' || !to.startsWith('did:key:')) throw configError('to must be the sub-agent\'s did:key (or its key)')
  if (options.maxDepth !== undefined && (!Number.isSafeInteger(options.maxDepth) || options.maxDepth < 0)) throw configError('maxDepth must be a non-negative integer')
  if (options.expiresIn !== undefined && (!Number.isSafeInteger(options.expiresIn) || options.expiresIn <= 0)) throw configError('expiresIn must be a positive number of seconds')
  const ahead = options.refreshAheadSeconds ?? 30
  if (!Number.isSafeInteger(ahead) || ahead < 0) throw configError('refreshAheadSeconds must be a non-negative integer')
  const request = {
    ...(options.audiences ? { audiences: [...options.audiences] } : {}),
    ...(options.scopes ? { scopes: [...options.scopes] } : {}),
    ...(options.tools ? { tools: options.tools.map((t) => ({ ...t })) } : {}),
    ...(options.expiresIn !== undefined ? { expiresIn: options.expiresIn } : {}),
    ...(options.maxDepth !== undefined ? { maxDepth: options.maxDepth } : {}),
    ...(options.budget ? { budget: { ...options.budget } } : {}),
    ...(options.maxUses !== undefined ? { maxUses: options.maxUses } : {}),
  }
  let current: { token: string; expiresAt: number } | undefined
  let inFlight: Promise<string> | undefined
  const exchange = async (): Promise<string> => {
    const parent = typeof source === 'string' ? source : await source()
    if (typeof parent !== 'string' || parent.length === 0) throw new MandateError('INVALID_GRANT', 'no mandate is available to delegate from')
    const issued = await atAuthority(client.issuer, 'delegating a mandate', () => client.delegate({ mandate: parent, to, ...request }))
    if (typeof issued?.token !== 'string' || issued.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no mandate')
    current = { token: issued.token, expiresAt: issued.expiresAt }
    return issued.token
  }
  return () => {
    if (current && current.expiresAt - ahead > Date.now() / 1000) return Promise.resolve(current.token)
    inFlight ??= exchange().finally(() => {
      inFlight = undefined
    })
    return inFlight
  }
}
