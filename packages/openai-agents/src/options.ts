import type { KernelOptions } from '@mandate/core/kernel'

export type { AudienceResolver, MandateSource } from '@mandate/core/kernel'

/** How Mandate approvals meet the Agents SDK. */
export interface AgentsApprovalOptions {
  /**
   * `sdk` (default): the SDK's own human-in-the-loop flow. When the Authority says a call needs a
   * human, the tool's `needsApproval` answers true, so the run ends with `result.interruptions`
   * (read the Authority's approval id with `mandateApprovals(result)`); the approver decides at the
   * Authority; the app calls `result.state.approve(item)` (or `reject`) and resumes with
   * `run(agent, result.state)`. The tool runs only if the Authority approved: an SDK approval alone
   * is a refusal (`APPROVAL_REQUIRED`) the model reads.
   *
   * `wait`: the tool's `invoke` waits for the approver's decision at the Authority (by event), up
   * to `timeoutMs`; the run does not pause.
   */
  mode?: 'sdk' | 'wait'
  /** How long the `wait` mode waits, in milliseconds (default 120 000). */
  timeoutMs?: number
}

/**
 * Options of `mandateTools`: who holds which mandate, where each tool's credential goes, and how it
 * is verified. The kernel options of `@mandate/core/kernel`, with the approval mode of this adapter.
 */
export interface MandateToolsOptions extends Omit<KernelOptions, 'approval' | 'onTerminalRefusal'> {
  approval?: AgentsApprovalOptions
  /**
   * Refusals no retry in this run can fix (`REVOKED`, `TOKEN_EXPIRED`, `AGENT_DISABLED`,
   * `AGENT_UNKNOWN`, see `TERMINAL_REFUSALS`): `'report'` (default) gives them to the model as the
   * tool's output, like any refusal; `'stop'` ends the run — `run()` rejects (a `ToolCallError`
   * whose `error`, or the error itself, satisfies `isTerminalRefusal`) before the tool runs.
   */
  onTerminalRefusal?: 'report' | 'stop'
}
