import type { AuthorityClient, Ed25519Key, Guard } from '@mandate/core'

/** The holder's mandate: a token, or a function returning the current one (e.g. after a refresh). */
export type MandateSource = string | (() => string | Promise<string>)

/** Which audience (canonical resource URI) each tool belongs to: one for all, a map by tool name, or a function. */
export type AudienceResolver = string | Readonly<Record<string, string>> | ((tool: string) => string | undefined)

/** How Mandate approvals meet the AI SDK. */
export interface AiSdkApprovalOptions {
  /**
   * `sdk` (default): the SDK's own tool-approval flow. When the Authority says a call needs a human,
   * the SDK emits a `tool-approval-request` (read the Authority's approval id with
   * `mandateApprovals`); the approver decides at the Authority; the app answers with a
   * `tool-approval-response` and calls the SDK again; the tool runs only if the Authority approved.
   * `wait`: `execute` waits for the approver's decision at the Authority (by event) up to `timeoutMs`.
   */
  mode?: 'sdk' | 'wait'
  /** How long the `wait` mode waits, in milliseconds (default 120 000). */
  timeoutMs?: number
}

/** Options of `mandateTools`: who holds which mandate, and how each tool's calls are verified. */
export interface MandateToolsOptions {
  /** The holder's Authority client (`authority.clientFor(key)` in-process, or `createHttpAuthorityClient`). */
  client: AuthorityClient
  /** The holder's key: signs the proof that accompanies each call credential. */
  key: Ed25519Key
  /** The holder's mandate (task grant or a delegated mandate). */
  mandate: MandateSource
  /** The audience of each tool, in canonical form. A tool without one is `CONFIG_INVALID` when wrapped. */
  audience: AudienceResolver
  /** Guards that verify local tools' credentials before they run, matched by `guard.audience`. */
  guard?: Guard | readonly Guard[]
  /**
   * Tools whose credential is presented by their transport (an MCP client on `mandateMcpTransport`,
   * an HTTP call through a Mandate fetch) and verified by the remote side's guard: `true` for all,
   * or a list of tool names. A remote tool that returns without having presented its credential
   * fails with `CREDENTIAL_NOT_PRESENTED` and its result is withheld.
   */
  remote?: boolean | readonly string[]
  /** Map a ToolSet name to its name in the mandate (e.g. `billing_refund` → `billing.refund`). */
  toolName?: (name: string) => string
  approval?: AiSdkApprovalOptions
  /** Scopes to request in each call credential (default: the mandate's). */
  scopes?: readonly string[]
  /** Call credential lifetime in seconds (≤ 60; default: the Authority's). */
  expiresIn?: number
  /**
   * Refusals no retry in this run can fix (`REVOKED`, `TOKEN_EXPIRED`, `AGENT_DISABLED`,
   * `AGENT_UNKNOWN`, see `TERMINAL_REFUSALS`): `'report'` (default) gives them to the model as a tool
   * error like any refusal; `'stop'` ends the run — `generateText` / `agent.generate` reject and a
   * `streamText` stream errors with the MandateError, before the tool runs (in approval mode `wait`,
   * add `stopOnTerminalRefusal` to `stopWhen`).
   */
  onTerminalRefusal?: 'report' | 'stop'
  /** Called when the audit record of a locally verified call cannot be written (default: the call fails). */
  onReportError?: (error: Error) => void
}
