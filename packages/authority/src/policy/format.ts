/**
 * The policy format's vocabulary and limits, in one place: the validator reads these tables, and a
 * test checks that the published JSON Schema (policy.schema.json) lists exactly the same members,
 * effects, operations and constraint shapes. Add a member here and in the schema, or neither.
 */
import type { PolicyEffect, PolicyOperation } from './engine.js'

/** Members of the object form of a policy document. */
export const DOCUMENT_MEMBERS = ['$schema', 'version', 'defaultEffect', 'rules'] as const
/** The only document version this code understands; a later one is refused, not half-read. */
export const POLICY_VERSION = 1

/** Selectors: each one a string or a non-empty array of strings; a rule matches when every selector it sets matches. */
export const SELECTORS = ['subject', 'agent', 'actor', 'recipient', 'audience', 'tool'] as const
export type PolicySelector = (typeof SELECTORS)[number]

/** Members of one rule. `effect` is the only required one. */
export const RULE_MEMBERS = ['id', 'effect', 'on', ...SELECTORS, 'when', 'reason'] as const
export const RULE_REQUIRED = ['effect'] as const

export const EFFECTS: readonly PolicyEffect[] = ['allow', 'deny', 'require_approval']
export const OPERATIONS: readonly PolicyOperation[] = ['grant', 'delegation', 'audience', 'call']

/** The built-in constraint types (core's defaultConstraintRegistry) and their members besides `type`; all are required. */
export const CONSTRAINT_MEMBERS = {
  exact: ['value'],
  enum: ['values'],
  max: ['value'],
  min: ['value'],
  path_prefix: ['prefix'],
} as const satisfies Record<string, readonly string[]>
export type BuiltinConstraintType = keyof typeof CONSTRAINT_MEMBERS

/** Bounds: a policy is configuration, not data; anything larger is a mistake or an attack. */
export const POLICY_LIMITS = {
  /** Rules per document. */
  rules: 1000,
  /** Values per selector array. */
  selectorItems: 256,
  /** Characters of a subject or audience value. */
  value: 2048,
  /** Characters of a tool pattern (core's limit). */
  tool: 128,
  /** Characters of a rule id (printable ASCII). */
  id: 128,
  /** Characters of a reason. */
  reason: 512,
  /** Conditions in one `when` (core's limit). */
  conditions: 32,
  /** Characters of a `when` key (an argument name or a JSON pointer). */
  conditionKey: 256,
  /** Values of an `enum` constraint (core's limit). */
  enumValues: 64,
  /** Characters of a constraint value serialised as JSON (core's limit). */
  constraintValueJson: 1024,
  /** Bytes of a policy file. */
  fileBytes: 1024 * 1024,
} as const

/** Printable ASCII, like agent names: ids appear in refusals and audit records. */
export const RULE_ID = /^[\x20-\x7e]{1,128}$/
/** core's tool pattern grammar: `*`, a dotted name, or a dotted name ending in `.*`. */
export const TOOL_PATTERN = /^(?:\*|[A-Za-z0-9_\-/:]+(?:\.[A-Za-z0-9_\-/:]+)*(?:\.\*)?)$/
