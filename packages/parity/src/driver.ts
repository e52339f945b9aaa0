// The small interface every adapter driver implements: a scripted model's turns go in, what the
// model received and what the tools returned come out. Scenarios are written once against it.
import type { Ed25519Key } from '@mandate/core'
import type { World } from './world.js'

export interface ScriptCall {
  name: string
  args: Record<string, unknown>
  id: string
}

/** One model turn: optional work done while the model "thinks" (e.g. a revocation), then its tool calls. */
export interface Turn {
  before?: () => Promise<void>
  calls: ScriptCall[]
}

export interface ToolOutput {
  id: string
  name: string
  text: string
  /** The adapter reported the call as failed (refusal or tool error). */
  error: boolean
}

export interface RunResult {
  /** Serialised copy of every input the scripted model received, one entry per model call. */
  modelInputs: string[]
  /** What each tool call returned to the model, in call order. */
  outputs: ToolOutput[]
  /** Every callback / trace payload the framework emitted (empty when the framework has none). */
  traces: string[]
}

export interface RunInput {
  mandate: string
  /** The agent running (its key signs the proofs). */
  key: Ed25519Key
  turns: Turn[]
  /**
   * Absent: approvals are awaited inside the call (`wait` mode). Present: the adapter's own
   * pause/resume flow (LangGraph interrupt + Command, AI SDK tool-approval-request, MCP APPROVAL_REQUIRED
   * + retry); the driver calls `decide(approvalId)` while paused (the human, at the Authority), then resumes.
   */
  approval?: { decide(approvalId: string): Promise<void> }
}

export interface Session {
  /** The resource URI the tools are reached at (the mandate's audience). */
  audience: string
  run(input: RunInput): Promise<RunResult>
  close(): Promise<void>
}

export interface Driver {
  name: string
  open(world: World): Promise<Session>
}

/** Text every driver gives the model for a refusal, so scenarios can read the code. */
export function refusalText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown }
  return typeof e?.code === 'string' ? `Refused by Mandate (${e.code}): ${String(e.message)}` : `Error: ${String(e?.message ?? err)}`
}

/** JSON of anything, tolerant of cycles, functions and bigints. */
export function dump(value: unknown): string {
  const seen = new WeakSet<object>()
  try {
    return JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString()
      if (typeof v === 'function') return undefined
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[cycle]'
        seen.add(v)
      }
      return v
    }) ?? ''
  } catch {
    return String(value)
  }
}

const JWS = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\./

/** Haystacks holding a JWS-shaped string, a `DPoP ` header value, or any of the tokens (or its signature). */
export function findLeaks(haystacks: readonly string[], tokens: readonly string[]): string[] {
  const secrets = new Set<string>()
  for (const t of tokens) {
    for (const part of t.split('~')) {
      secrets.add(part)
      const sig = part.split('.')[2]
      if (sig && sig.length > 20) secrets.add(sig)
    }
  }
  return haystacks
    .filter((h) => JWS.test(h) || /\bDPoP\s+[A-Za-z0-9_-]{20,}/.test(h) || [...secrets].some((s) => h.includes(s)))
    .map((h) => h.slice(0, 300))
}
