/**
 * The one admission check for principals. Every action a registered principal takes — client
 * authentication at every HTTP endpoint, in-process exchanges, task grants, approval decisions,
 * call reports — asks here whether that principal may act: registered, not disabled, not revoked,
 * and, for one registered for a bounded time, not expired.
 * Only the registry record is read: revoking an agent marks it `revoked` in the same transaction
 * as the revocation entry, a pre-emptively revoked did can never be registered, and opening an
 * older database back-fills the mark, so a second lookup of the revocation list on every
 * authenticated request would only repeat what the record says (the exchange still checks the
 * whole actor chain against the revocation list).
 */
import { MandateError, type MandateErrorCode } from '@mandate/core'
import { actingAdmin, assertAdminRemains, type AdminGuard, type AuthorityStore } from '../store/store.js'
import type { AgentRecord, Role } from '../types.js'

/** Whether an agent revocation entry names `did` ('' is never a task id, so only the agent entry can match). */
export function agentRevoked(store: AuthorityStore, did: string): Promise<boolean> {
  return store.isRevoked({ ids: [], txn: '', actors: [did] })
}

export interface AdmitOptions {
  /** Code of the refusal (authentication: INVALID_CLIENT; role checks elsewhere use their own). */
  code?: MandateErrorCode
  /** Name of the principal in messages ("client", "grantor", "approver"...). */
  as?: string
  /** Roles allowed to take this action (checked after the status). */
  roles?: readonly Role[]
  /** Now, ms since the epoch (default Date.now()): a registration whose `expiresAt` is not after it has ended. */
  now?: number
}

/**
 * The principal `did` if it may act now; otherwise a MandateError (default INVALID_CLIENT) saying
 * why: unknown, disabled, revoked or expired. Messages name no secret; only the did's own holder (or the
 * host) reaches this after authentication, so saying why leaks nothing to strangers.
 */
export async function admitPrincipal(store: AuthorityStore, did: unknown, options: AdmitOptions = {}): Promise<AgentRecord> {
  const code = options.code ?? 'INVALID_CLIENT'
  const as = options.as ?? 'client'
  if (typeof did !== 'string' || did.length === 0 || did.length > 2048) throw new MandateError(code, `${as} must be a registered principal's did`)
  const agent = await store.getAgent(did)
  if (!agent) throw new MandateError(code, `unknown ${as}`)
  if (agent.status === 'revoked' || agent.revokedAt !== undefined) {
    throw new MandateError(code, `${as} has been revoked`)
  }
  if (agent.disabled || agent.status !== 'enabled') throw new MandateError(code, `${as} is disabled`)
  // a principal registered for a bounded time (a workload agent under a federation rule) ends with it
  if (agent.expiresAt !== undefined && !(agent.expiresAt > (options.now ?? Date.now()))) throw new MandateError(code, `${as}'s registration has expired`)
  if (options.roles && !options.roles.includes(agent.role)) throw new MandateError(code, `${as} must have the role ${options.roles.join(' or ')}`)
  return agent
}

// one principal change at a time per store in this process (see keepingAnAdmin)
const principalChanges = new WeakMap<AuthorityStore, Promise<unknown>>()

/**
 * Run `fn`, which takes `did` out of service (disables or revokes it), unless `did` is the last
 * admin that may act: afterwards nobody could use the admin API (the HTTP admin endpoints, the CLI,
 * the dashboard's admin actions) again. Refused with LAST_ADMIN (HTTP 409);
 * register or enable another admin first. An admin taking itself out of service while another one
 * remains is allowed. The check and `fn` run one at a time per store in this process, so that two
 * admins disabling each other at once cannot both pass it; `fn` gets an AdminGuard to hand the
 * store, which repeats the check inside its write transaction, where instances sharing the store
 * (Postgres) are serialised too.
 */
export function keepingAnAdmin<T>(store: AuthorityStore, did: string, now: () => number, fn: (keepAdmin: AdminGuard) => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    const target = await store.getAgent(did)
    if (target && actingAdmin(target, now())) assertAdminRemains(await store.listAgents(), new Set([did]), now())
    return fn({ now: now() })
  }
  const result = (principalChanges.get(store) ?? Promise.resolve()).then(run, run)
  principalChanges.set(store, result.catch(() => undefined))
  return result
}
