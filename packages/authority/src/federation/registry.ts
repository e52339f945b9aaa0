/**
 * The federation rules an Authority trusts: those of the config file (read-only at runtime) and
 * those stored by admins (admin API, `mandate federation add`). The stored ones are read from the
 * store on every call, so several Authority instances sharing one database agree on them at once
 * (the table is small); each stored rule is validated again when read (fail closed: a rule that no
 * longer passes today's checks — a stricter version, a lowered maxMandateLifetime, a hand-edited
 * row — matches nothing and is listed with the reason). Changes are audited with the rule's id,
 * issuer and kind; no token ever reaches this module.
 */
import { MandateError, type JsonValue } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'
import type { AuditDraft, AuditRecord, AuditType } from '../types.js'
import type { FederationRule, RuleSource } from './types.js'

/** How the Authority drafts and records audit (AuditLog: src/audit/chain.ts). */
export interface RegistryAudit {
  draft(type: AuditType, fields: Record<string, JsonValue>): AuditDraft
  recorded(rec: AuditRecord): Promise<void>
}

export interface FederationRegistryOptions {
  store: AuthorityStore
  /** Rules from the config file, already validated (by `parse`). */
  configRules: readonly FederationRule[]
  /** Validate a rule (throws MandateError, e.g. CONFIG_INVALID naming the pointer). */
  parse: (input: unknown) => FederationRule
  /** ms clock */
  now: () => number
  audit: RegistryAudit
  /** Most rules the store may hold (default 500): every grant reads them all. */
  maxStoredRules?: number
}

/** A rule as listed (admin API, CLI, dashboard). */
export interface ListedFederationRule {
  rule: FederationRule
  source: RuleSource
  /** Store rules: when and by whom it was added (ms since the epoch). */
  createdAt?: number
  createdBy?: string
  /** A stored rule that is not in force: its id is taken by a config rule, or it no longer validates. */
  inactive?: string
}

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/

export class FederationRegistry {
  readonly #o: FederationRegistryOptions
  readonly #configIds: Set<string>
  readonly #max: number
  /** Validation results of stored rules by their JSON text (bounded: only the texts read last time are kept). */
  #parsed = new Map<string, FederationRule | { error: string }>()

  constructor(options: FederationRegistryOptions) {
    this.#o = options
    this.#configIds = new Set()
    for (const r of options.configRules) {
      if (this.#configIds.has(r.id)) throw new MandateError('CONFIG_INVALID', `federation rule id ${r.id} is used by two rules of the config file`)
      this.#configIds.add(r.id)
    }
    this.#max = options.maxStoredRules ?? 500
    if (!Number.isSafeInteger(this.#max) || this.#max < 0) throw new MandateError('CONFIG_INVALID', 'maxStoredRules must be a non-negative integer')
  }

  /** The rules in force: config rules first (in file order), then stored rules in creation order. */
  async rules(): Promise<Array<{ rule: FederationRule; source: RuleSource }>> {
    const out: Array<{ rule: FederationRule; source: RuleSource }> = this.#o.configRules.map((rule) => ({ rule, source: 'config' }))
    for (const l of await this.#stored()) if (l.inactive === undefined) out.push({ rule: l.rule, source: 'store' })
    return out
  }

  /** Every rule with its bookkeeping, including stored rules not in force (with why). */
  async list(): Promise<ListedFederationRule[]> {
    return [...this.#o.configRules.map((rule): ListedFederationRule => ({ rule, source: 'config' })), ...(await this.#stored())]
  }

  /**
   * Validate `input` and store it (audited `federation.rule.added`). Refused (INVALID_REQUEST): an
   * invalid rule (with the validator's message and pointer), an id taken by a config or stored rule.
   */
  async add(input: unknown, by?: string): Promise<ListedFederationRule> {
    checkBy(by)
    let rule: FederationRule
    try {
      rule = this.#o.parse(input)
    } catch (err) {
      if (MandateError.is(err) && err.code === 'CONFIG_INVALID') throw new MandateError('INVALID_REQUEST', err.message, err.detail ? { detail: err.detail } : {})
      throw err
    }
    if (this.#configIds.has(rule.id)) throw new MandateError('INVALID_REQUEST', `the federation rule ${rule.id} comes from the config file; choose another id (or edit the config file)`)
    const stored = await this.#o.store.listFederationRules()
    if (stored.length >= this.#max) throw new MandateError('INVALID_REQUEST', `the store holds ${stored.length} federation rules, the most allowed (${this.#max}); remove one first`)
    const createdAt = this.#o.now()
    const fields: Record<string, JsonValue> = { rule: rule.id, issuer: rule.trust.issuer, kind: rule.kind, token: rule.token }
    if (by !== undefined) fields.by = by
    // the store refuses an id already stored (INVALID_REQUEST): never a silent overwrite
    const rec = await this.#o.store.putFederationRule({ rule, createdAt, ...(by !== undefined ? { createdBy: by } : {}) }, this.#o.audit.draft('federation.rule.added', fields))
    await this.#o.audit.recorded(rec)
    return { rule, source: 'store', createdAt, ...(by !== undefined ? { createdBy: by } : {}) }
  }

  /**
   * Remove a stored rule (audited `federation.rule.removed`). A config rule cannot be removed
   * (INVALID_REQUEST: edit the config file); an unknown id is NOT_FOUND.
   */
  async remove(id: string, by?: string): Promise<void> {
    checkBy(by)
    if (typeof id !== 'string' || !ID.test(id)) throw new MandateError('NOT_FOUND', 'no federation rule has this id')
    if (this.#configIds.has(id)) throw new MandateError('INVALID_REQUEST', `the federation rule ${id} comes from the config file; edit the config file (and restart) to remove it`)
    const found = (await this.#o.store.listFederationRules()).find((r) => r.rule.id === id)
    if (!found) throw new MandateError('NOT_FOUND', `no stored federation rule has the id ${id}`)
    const fields: Record<string, JsonValue> = { rule: id }
    // the stored JSON may be damaged: only well-typed values reach the audit record
    if (typeof found.rule.trust?.issuer === 'string') fields.issuer = found.rule.trust.issuer.slice(0, 512)
    if (typeof found.rule.kind === 'string') fields.kind = found.rule.kind.slice(0, 16)
    if (by !== undefined) fields.by = by
    const rec = await this.#o.store.deleteFederationRule(id, this.#o.audit.draft('federation.rule.removed', fields))
    // removed meanwhile (another admin, another instance)
    if (!rec) throw new MandateError('NOT_FOUND', `no stored federation rule has the id ${id}`)
    await this.#o.audit.recorded(rec)
  }

  /** The stored rules, each validated again (cached by its text), in creation order. */
  async #stored(): Promise<ListedFederationRule[]> {
    const rows = await this.#o.store.listFederationRules()
    const next = new Map<string, FederationRule | { error: string }>()
    const out: ListedFederationRule[] = []
    for (const row of rows) {
      const text = JSON.stringify(row.rule)
      let parsed = next.get(text) ?? this.#parsed.get(text)
      if (parsed === undefined) {
        try {
          parsed = this.#o.parse(JSON.parse(text) as unknown)
        } catch (err) {
          parsed = { error: MandateError.is(err) ? err.message : 'the stored rule is not valid' }
        }
      }
      next.set(text, parsed)
      const id = typeof row.rule?.id === 'string' ? row.rule.id : ''
      const listed: ListedFederationRule = { rule: 'error' in parsed ? row.rule : parsed, source: 'store', createdAt: row.createdAt, ...(row.createdBy !== undefined ? { createdBy: row.createdBy } : {}) }
      if ('error' in parsed) listed.inactive = `the stored rule no longer validates: ${parsed.error}`
      else if (this.#configIds.has(id)) listed.inactive = `a rule of the config file has the id ${id}; remove this stored rule`
      else if (parsed.id !== id) listed.inactive = 'the stored rule does not validate to the same id'
      out.push(listed)
    }
    this.#parsed = next
    return out
  }
}

function checkBy(by: unknown): void {
  if (by !== undefined && (typeof by !== 'string' || by.length > 512)) throw new MandateError('INVALID_REQUEST', 'by must be a string of at most 512 characters')
}
