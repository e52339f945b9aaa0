import type { AuthorityClient, Ed25519Key, Guard, MandateError } from '@mandate/core'
import { configError, createKernel, type Kernel, type ToolPlan } from '@mandate/core/kernel'

/** The holder's mandate: a token, or a function returning the current one (e.g. after a refresh). */
export type MandateSource = string | (() => string | Promise<string>)

/** Which audience (resource URI) each tool belongs to. */
export type AudienceResolver = string | Readonly<Record<string, string>> | ((tool: string) => string | undefined)

export interface ApprovalOptions {
  /**
   * `interrupt`: a LangGraph `interrupt()` (needs a checkpointer); `wait`: wait for the approval
   * event (`AuthorityClient.waitForApproval`) up to `timeoutMs`; `auto` (default): interrupt when
   * the run has a checkpointer, wait otherwise.
   */
  mode?: 'auto' | 'interrupt' | 'wait'
  /** How long the waiting path waits for a human, in milliseconds (default 120 000). */
  timeoutMs?: number
}

/**
 * How a call gets its credential (see the README, "Call modes").
 * - `per-call` (default): one exchange at the Authority per call, for a call credential bound to the
 *   tool and the exact arguments (single use). Approvals and per-call policy need this.
 * - `cached`: one audience credential per (mandate, audience) from the Authority, cached until shortly
 *   before it expires, reused with a fresh proof bound to the tool and argument digest per call — no
 *   Authority round trip per call. A tool whose grant says `per_call` (or that a guard refused with
 *   `CALL_CREDENTIAL_REQUIRED`) still goes per-call, approvals included: the mandate decides, not
 *   the agent. A held offline chain (`<root>~<hop>…`) is presented as is.
 */
export type CallMode = 'per-call' | 'cached'

/** Tuning of the `cached` call mode. */
export interface CachedModeOptions {
  /** Audience credential lifetime to request, in seconds (default: the Authority's; at most 900). */
  expiresIn?: number
  /** Replace the credential this many seconds before it expires (default 60, at most half its lifetime). */
  refreshAheadSeconds?: number
  /**
   * When the Authority (or its client) does not issue audience credentials (`UNSUPPORTED_TOKEN_TYPE`):
   * `per-call` (default) falls back to the per-call exchange for every call; `fail` refuses the calls.
   */
  whenUnavailable?: 'per-call' | 'fail'
  /**
   * Report each call verified by a local guard to the Authority's audit log, as the per-call mode
   * does (default false: that would be one Authority request per call, which the cached mode exists
   * to avoid; the Authority still records the audience credential it issued, and calls that fall
   * back to per-call are reported). Remote tools are reported by their server's guard either way.
   */
  reportCalls?: boolean
}

/** What the middleware and the tool wrapper need: who holds which mandate, and how calls are verified. */
export interface MandateOptions {
  /** The holder's Authority client (`authority.clientFor(key)` in-process, or `createHttpAuthorityClient`). */
  client: AuthorityClient
  /** The holder's key: signs the proof that accompanies each call credential. */
  key: Ed25519Key
  /** The holder's mandate (task grant or a delegated mandate). */
  mandate: MandateSource
  /**
   * The audience (resource URI) of each tool, in canonical form (`https://host/path`: lowercase
   * host, no default port, query or fragment). A tool without one is a configuration mistake
   * (`CONFIG_INVALID`), found when the adapter is built.
   */
  audience: AudienceResolver
  /**
   * Guards that verify the call credential at the tool side before an in-process tool runs, matched
   * by `guard.audience`. The tool then sees a *verified* {@link CallContext}.
   */
  guard?: Guard | readonly Guard[]
  /**
   * Tools whose credential is forwarded (by `mandateFetch` or an MCP transport) and verified by the
   * remote side's own guard: `true` for every tool, or a list of tool names. A tool that is neither
   * remote nor has a local guard for its audience is a configuration mistake (`CONFIG_INVALID`).
   *
   * A remote tool must present its credential to its audience (through `createMandateFetch` or an
   * MCP transport built on it), and `createMandateFetch` presents it only to a resource that
   * advertises Mandate protection by this Authority (RFC 9728 metadata; else RESOURCE_NOT_PROTECTED). If the tool returns without having sent it — e.g. an MCP client whose
   * transport knows nothing about Mandate — the call fails with `CREDENTIAL_NOT_PRESENTED`, its result
   * is withheld from the model, and the Authority is told the credential was not presented.
   */
  remote?: boolean | readonly string[]
  /** Map a LangChain tool name to its name in the mandate (e.g. `billing_refund` → `billing.refund`). */
  toolName?: (name: string) => string
  approval?: ApprovalOptions
  /** How calls get their credentials: `per-call` (default) or `cached`; see {@link CallMode}. */
  mode?: CallMode
  cached?: CachedModeOptions
  /** Scopes to request in each call credential (default: the mandate's). */
  scopes?: readonly string[]
  /** Call credential lifetime in seconds (≤ 60; default: the Authority's). */
  expiresIn?: number
  /**
   * Called when the audit record of a locally verified call cannot be written. Default: the call is
   * reported to the model as failed (fail closed).
   */
  onReportError?: (error: MandateError) => void
  /**
   * Refusals that no retry in this run can fix — the Authority (or the local guard) says the task or
   * a mandate of its chain is revoked or expired, or the agent is disabled or unknown (see
   * {@link TERMINAL_REFUSALS}): `'report'` (default) returns them to the model as an error
   * ToolMessage like any refusal; `'stop'` ends the run instead, so a model cannot keep retrying a
   * dead task. With `mandateMiddleware`, `agent.invoke` then rejects (LangChain wraps the
   * MandateError: it is the error's `cause`). With `withMandate`, the tool throws the MandateError
   * even when invoked with a tool call; LangGraph's `ToolNode` only lets it through with
   * `handleToolErrors: false`, so under `createAgent` prefer the middleware.
   */
  onTerminalRefusal?: 'report' | 'stop'
}

export { TERMINAL_REFUSALS } from '@mandate/core/kernel'

/** Internal: validated options, and the kernel every call of this adapter goes through. */
export interface Settings {
  readonly kernel: Kernel
  /**
   * Resolve how the tool is guarded — its mandate name, audience, and local guard or remote side —
   * reading the user's resolvers once; throw CONFIG_INVALID (naming the tool) unless it can be
   * guarded as configured.
   */
  readonly checkTool: (name: string) => ToolPlan
  readonly approvalMode: 'auto' | 'interrupt' | 'wait'
  readonly stopOnTerminal: boolean
}

/**
 * Validate options once. Every mistake found here is a MandateError `CONFIG_INVALID`: thrown where
 * the adapter is built, not sent to a model later.
 */
export function resolveSettings(options: MandateOptions): Settings {
  if (typeof options !== 'object' || options === null) throw configError('options are required')
  const approval: unknown = options.approval ?? {}
  if (typeof approval !== 'object' || approval === null) throw configError('approval must be an object')
  const mode: unknown = (approval as { mode?: unknown }).mode ?? 'auto'
  if (mode !== 'auto' && mode !== 'interrupt' && mode !== 'wait') throw configError('approval.mode must be auto, interrupt or wait')
  const kernel = createKernel(options, {
    presentHint: 'Send its requests through createMandateFetch (or an MCP transport built on it), or give it a local guard instead of listing it as remote',
  })
  return Object.freeze({ kernel, checkTool: (name: string) => kernel.checkTool(name), approvalMode: mode, stopOnTerminal: kernel.stopOnTerminal })
}
