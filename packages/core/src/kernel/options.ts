import type { AuthorityClient } from '../client/authority_client.js'
import type { MandateError } from '../errors.js'
import type { Guard } from '../guard/guard.js'
import type { Ed25519Key } from '../identity/key.js'

/** The holder's mandate: a token, or a function returning the current one (e.g. after a refresh). */
export type MandateSource = string | (() => string | Promise<string>)

/** Which audience (canonical resource URI) each tool belongs to: one for all, a map by tool name, or a function. */
export type AudienceResolver = string | Readonly<Record<string, string>> | ((tool: string) => string | undefined)

/**
 * How a call gets its credential.
 * - `per-call` (default): one exchange at the Authority per call, for a call credential bound to the
 *   tool and the exact arguments (single use). Approvals and per-call policy need this.
 * - `cached`: one audience credential per (mandate, audience), cached until shortly before it
 *   expires, reused with a fresh proof bound to the tool and argument digest per call. A tool whose
 *   grant says `per_call` (or that a guard refused with `CALL_CREDENTIAL_REQUIRED`) still goes
 *   per-call, approvals included: the mandate decides, not the agent.
 */
export type CallMode = 'per-call' | 'cached'

/** Tuning of the `cached` call mode. */
export interface CachedModeOptions {
  /** Audience credential lifetime to request, in seconds (default: the Authority's; at most 900). */
  expiresIn?: number
  /** Replace the credential this many seconds before it expires (default 60, at most half its lifetime). */
  refreshAheadSeconds?: number
  /**
   * When the Authority does not issue audience credentials (`UNSUPPORTED_TOKEN_TYPE`): `per-call`
   * (default) falls back to the per-call exchange for every call; `fail` refuses the calls.
   */
  whenUnavailable?: 'per-call' | 'fail'
  /** Report each call verified by a local guard to the Authority's audit log (default false). */
  reportCalls?: boolean
}

/**
 * What every framework adapter asks of its user: who holds which mandate, where each tool's
 * credential goes, and how it is verified. Adapters extend this with their own hook options.
 */
export interface KernelOptions {
  /** The holder's Authority client (`authority.clientFor(key)` in-process, or `createHttpAuthorityClient`). */
  client: AuthorityClient
  /** The holder's key: signs the proof that accompanies each credential. */
  key: Ed25519Key
  /** The holder's mandate (task grant or a delegated mandate). */
  mandate: MandateSource
  /**
   * The audience of each tool, in canonical form (`https://host/path`: lowercase host, no default
   * port, query or fragment; or a `urn:`). A tool without one is `CONFIG_INVALID` when wrapped.
   */
  audience: AudienceResolver
  /** Guards that verify an in-process tool's credential before it runs, matched by `guard.audience`. */
  guard?: Guard | readonly Guard[]
  /**
   * Tools whose credential is presented by their transport (an MCP client on a Mandate transport, an
   * HTTP call through a Mandate fetch) and verified by the remote side's guard: `true` for all, or a
   * list of tool names. A remote tool that returns without having presented its credential fails with
   * `CREDENTIAL_NOT_PRESENTED`, its result is withheld, and the Authority is told.
   */
  remote?: boolean | readonly string[]
  /** Map a framework tool name to its name in the mandate (e.g. `billing_refund` → `billing.refund`). */
  toolName?: (name: string) => string
  /** How calls get their credentials: `per-call` (default) or `cached`; see {@link CallMode}. */
  mode?: CallMode
  cached?: CachedModeOptions
  /** Scopes to request in each credential (default: the mandate's). */
  scopes?: readonly string[]
  /** Call credential lifetime in seconds (≤ 60; default: the Authority's). */
  expiresIn?: number
  approval?: {
    /** How long the `wait` strategy waits for a human, in milliseconds (default 120 000). */
    timeoutMs?: number
  }
  /**
   * Refusals no retry in this run can fix (see `TERMINAL_REFUSALS`): `'report'` (default) hands them
   * to the model like any refusal; `'stop'` ends the run (each adapter documents how).
   */
  onTerminalRefusal?: 'report' | 'stop'
  /** Called when the audit record of a locally verified call cannot be written (default: the call fails). */
  onReportError?: (error: MandateError) => void
}
