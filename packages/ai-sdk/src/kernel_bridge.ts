/**
 * The one seam between this adapter and the shared call path, `@mandate/core/kernel`: this file maps
 * the adapter's options onto the kernel and its approval modes onto the kernel's strategies.
 */
import { MandateError, type JsonValue } from '@mandate/core'
import { configError, createKernel, type PreparedCall } from '@mandate/core/kernel'
import type { MandateToolsOptions } from './options.js'

export { TERMINAL_REFUSALS } from '@mandate/core/kernel'

/** A call credential obtained for one call, not yet used. Opaque: no token in it. */
export type Prepared = PreparedCall

export interface PrepareParams {
  readonly name: string
  readonly arguments: JsonValue
  readonly toolCallId: string
  readonly approvalId?: string
  /** `throw`: APPROVAL_REQUIRED with the approval in `detail`; `wait`: wait for the decision. */
  readonly approval: 'throw' | 'wait'
  readonly signal?: AbortSignal
}

export interface Bridge {
  readonly approvalMode: 'sdk' | 'wait'
  readonly stopOnTerminal: boolean
  checkTool(name: string): void
  prepare(p: PrepareParams): Promise<Prepared>
  run<T>(prepared: Prepared, fn: (args: JsonValue) => Promise<T>): Promise<T>
  isTerminal(err: unknown): boolean
  /** Secrets a prepared call touched (its credential, the mandate). */
  secretsOf(prepared: Prepared): readonly string[]
  /** Secrets known without a prepared call (the mandate last read). */
  secrets(): readonly string[]
}

/** Validate options once (CONFIG_INVALID here, never at a call). */
export function createBridge(options: MandateToolsOptions): Bridge {
  if (typeof options !== 'object' || options === null) throw configError('options are required')
  const approval: unknown = options.approval ?? {}
  if (typeof approval !== 'object' || approval === null) throw configError('approval must be an object')
  const mode: unknown = (approval as { mode?: unknown }).mode ?? 'sdk'
  if (mode !== 'sdk' && mode !== 'wait') throw configError('approval.mode must be sdk or wait')
  const timeoutMs = (approval as { timeoutMs?: number }).timeoutMs
  const kernel = createKernel(
    {
      client: options.client, key: options.key, mandate: options.mandate, audience: options.audience,
      ...(options.guard !== undefined ? { guard: options.guard } : {}),
      ...(options.remote !== undefined ? { remote: options.remote } : {}),
      ...(options.toolName !== undefined ? { toolName: options.toolName } : {}),
      ...(options.scopes !== undefined ? { scopes: options.scopes } : {}),
      ...(options.expiresIn !== undefined ? { expiresIn: options.expiresIn } : {}),
      ...(timeoutMs !== undefined ? { approval: { timeoutMs } } : {}),
      ...(options.onTerminalRefusal !== undefined ? { onTerminalRefusal: options.onTerminalRefusal } : {}),
      ...(options.onReportError !== undefined ? { onReportError: options.onReportError } : {}),
    },
    { presentHint: 'Connect it through mandateMcpTransport, or give it a local guard', checkEagerly: false },
  )
  return Object.freeze({
    approvalMode: mode,
    stopOnTerminal: kernel.stopOnTerminal,
    checkTool: (name: string) => void kernel.checkTool(name),
    prepare: (p: PrepareParams) => {
      if (p.approval !== 'throw' && p.approval !== 'wait') return Promise.reject(new MandateError('INTERNAL', 'unknown approval strategy'))
      return kernel.prepare({
        name: p.name, arguments: p.arguments, toolCallId: p.toolCallId, approval: p.approval,
        ...(p.approvalId !== undefined ? { approvalId: p.approvalId } : {}), ...(p.signal ? { signal: p.signal } : {}),
      })
    },
    run: <T>(prepared: Prepared, fn: (args: JsonValue) => Promise<T>) => kernel.run(prepared, fn),
    isTerminal: (err: unknown) => kernel.isTerminal(err),
    secretsOf: (prepared: Prepared) => kernel.secretsOf(prepared),
    secrets: () => kernel.secrets(),
  })
}
