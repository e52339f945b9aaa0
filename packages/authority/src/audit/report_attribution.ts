/**
 * An agent may report only its own calls, and "its own" is checked against what the Authority
 * issued, not taken from the report: otherwise any registered agent could write calls (and holder-
 * signed offline hops the Authority never saw) into any task's audit log and delegation tree.
 * Guards (resource principals) and admins verified the chain themselves and are not re-checked.
 */
import { MandateError, type JsonValue } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'

const denied = (why: string) => new MandateError('ACCESS_DENIED', `an agent can report only its own calls: ${why}`)

/**
 * Refuse (ACCESS_DENIED) an agent's report unless the credential it names is one the Authority
 * issued to that agent for that task — or, for an offline chain, unless the chain's root is a
 * mandate of that task that allows offline attenuation, at most that many hops deep, ending with
 * the reporting agent as holder.
 */
export async function assertAgentOwnsReport(
  store: Pick<AuthorityStore, 'getMandate'>, agent: string, report: { jti: string; txn: string; offlineHops?: readonly JsonValue[] | undefined },
): Promise<void> {
  const hops = report.offlineHops
  if (hops === undefined) {
    const m = await store.getMandate(report.jti)
    if (!m || m.txn !== report.txn) throw denied('the Authority issued no such credential for this task')
    if (m.holder !== agent) throw denied('the credential is held by another agent')
    return
  }
  // parseOfflineHops already checked the chain's shape: each hop the child of the one before, the last the reported credential
  const first = hops[0] as { parent: string }
  const last = hops[hops.length - 1] as { holder: string }
  const root = await store.getMandate(first.parent)
  if (!root || root.txn !== report.txn) throw denied('the offline chain does not start at a mandate of this task')
  const maxHops = root.claims.offline?.max_hops
  if (maxHops === undefined) throw denied('the root mandate does not allow offline attenuation')
  if (hops.length > maxHops) throw denied('the offline chain is longer than its root allows')
  if (last.holder !== agent) throw denied('the offline chain ends with another holder')
}
