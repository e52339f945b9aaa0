/**
 * The capability a Mandate-guarded MCP server advertises in its `initialize` result:
 * `capabilities.experimental["io.mandate/guard"] = { verifies: "call-credential", version: 1, resource }`.
 * A client sends call credentials over stdio / in-memory (`_meta`) only to a server that advertises
 * it: a credential names the subject, the task purpose and the actor chain, which an unguarded server
 * has no business reading. `resource` is the guard's audience, so a client can tell before minting
 * anything that the credential it would ask for is the one this server accepts.
 */
export const GUARD_CAPABILITY = 'io.mandate/guard'

/** The value of {@link GUARD_CAPABILITY}. */
export interface GuardCapability {
  verifies: 'call-credential'
  version: 1
  /** The guard's audience (the canonical resource URI the server accepts credentials for). */
  resource: string
}

/** The guard capability in an `initialize` result's `capabilities`, or undefined when absent or malformed. */
export function readGuardCapability(capabilities: unknown): GuardCapability | undefined {
  if (typeof capabilities !== 'object' || capabilities === null) return undefined
  const experimental = (capabilities as { experimental?: unknown }).experimental
  if (typeof experimental !== 'object' || experimental === null || !Object.hasOwn(experimental, GUARD_CAPABILITY)) return undefined
  const v = (experimental as Record<string, unknown>)[GUARD_CAPABILITY]
  if (typeof v !== 'object' || v === null) return undefined
  const { verifies, version, resource } = v as Record<string, unknown>
  if (verifies !== 'call-credential' || version !== 1 || typeof resource !== 'string') return undefined
  return { verifies, version, resource }
}
