/**
 * An agent may report only its own calls, and "its own" is checked against what the Authority
 * issued, not taken from the report: otherwise any registered agent could write calls (and holder-
 * signed offline hops the Authority never saw) into any task's audit log and delegation tree.
 * Guards (resource principals) and admins verified the chain themselves and are not re-checked.
 */
import {
  actorChain, audienceList, MandateError, toolMatches, type JsonValue, type MandateClaims, type OfflineHop, type VerifiedOfflineChain,
} from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'

const denied = (why: string) => new MandateError('ACCESS_DENIED', `an agent can report only its own calls: ${why}`)

/** What an agent's report says about whose call it was (already shape-checked). */
export interface AgentReportClaims {
  /** When the report arrives, seconds since the epoch. */
  now: number
  jti: string
  txn: string
  tool: string
  audience: string
  argumentsDigest: string
  decision: 'allowed' | 'refused'
  actors: readonly string[]
  subject: string
  /** The hop summaries as reported (parseOfflineHops). */
  offlineHops?: readonly JsonValue[] | undefined
  /** The presented offline chain, when the call presented one. */
  offlineChain?: string | undefined
}

/**
 * Refuse (ACCESS_DENIED) an agent's report unless the credential it names is one the Authority
 * issued to that agent for that task and the report's subject, actor chain and (for an allowed
 * call) tool are that credential's. For an offline chain, the chain itself must come with the
 * report: the Authority verifies it (root by its own key, every hop by its holder's, each hop a
 * narrowing) and records the hops it verified, never the summaries an agent typed in.
 * Returns the credential's claims, and the hop summaries to record (offline chains only).
 */
export async function assertAgentOwnsReport(
  store: Pick<AuthorityStore, 'getMandate'>, agent: string, report: AgentReportClaims,
  verifyChain: (chain: string) => Promise<VerifiedOfflineChain>,
): Promise<{ credential: MandateClaims; hops?: JsonValue[] }> {
  if (report.offlineChain === undefined) {
    if (report.offlineHops !== undefined) throw denied('offline hops are recorded only with the chain they came from (offlineChain)')
    const m = await store.getMandate(report.jti)
    if (!m || m.txn !== report.txn) throw denied('the Authority issued no such credential for this task')
    if (m.holder !== agent) throw denied('the credential is held by another agent')
    assertReportMatches(m.claims, report)
    assertReportedInTime(m.claims, report.now)
    return { credential: m.claims }
  }
  let chain: VerifiedOfflineChain
  try {
    chain = await verifyChain(report.offlineChain)
  } catch (err) {
    throw new MandateError('ACCESS_DENIED', 'an agent can report only its own calls: its offline chain does not verify', { cause: err, ...(MandateError.is(err) ? { detail: { cause_code: err.code } } : {}) })
  }
  const last = chain.claims
  if (last.jti !== report.jti || last.txn !== report.txn) throw denied('the offline chain does not end at the reported credential of this task')
  if (last.client_id !== agent) throw denied('the offline chain ends with another holder')
  assertReportedInTime(last, report.now)
  const root = await store.getMandate(chain.root.jti)
  if (!root || root.txn !== report.txn) throw denied('the offline chain does not start at a mandate of this task')
  assertReportMatches(last, report)
  const hops = chain.hops.map(hopRecord)
  if (report.offlineHops !== undefined && JSON.stringify(report.offlineHops) !== JSON.stringify(hops)) {
    throw denied('the reported offline hops are not those of the chain')
  }
  return { credential: last, hops }
}

/**
 * The single-use key of an agent's report of an allowed call made with a single-use credential
 * (an Authority call credential or an offline call hop), and until when it is kept; undefined for
 * a reusable credential, whose every call is reported. A guard accepts such a credential once, so
 * a second "allowed" report of it is a replay of the first, not another call.
 */
export function reportSingleUse(credential: MandateClaims, decision: 'allowed' | 'refused', agent: string): { key: string; until: number } | undefined {
  if (decision !== 'allowed' || credential.call === undefined) return undefined
  // the holder in the key: an offline call hop's jti is its signer's choice, so another agent could
  // pick the same one and take a key named by the jti alone
  return { key: `report:${agent}:${credential.jti}`, until: credential.exp + MAX_REPORT_DELAY }
}

/**
 * How long after its credential expired a call may still be reported: a report comes when the tool
 * has finished, and a call credential lives 60 s, but an agent must not write records for
 * credentials long gone (seconds).
 */
export const MAX_REPORT_DELAY = 900

/** A report names a credential that is valid now, or expired at most {@link MAX_REPORT_DELAY} ago, and not one valid only later. */
function assertReportedInTime(claims: MandateClaims, now: number): void {
  if (now > claims.exp + MAX_REPORT_DELAY) throw denied(`the credential expired more than ${MAX_REPORT_DELAY} s ago`)
  if (claims.nbf > now + 60) throw denied('the credential is not valid yet')
}

/** The report's subject and actors are the credential's; an allowed call is of a tool it grants there. */
function assertReportMatches(claims: MandateClaims, report: AgentReportClaims): void {
  if (claims.sub !== report.subject) throw denied('the subject is not the credential\'s')
  const chain = actorChain(claims.act)
  if (chain.length !== report.actors.length || chain.some((a, i) => a !== report.actors[i])) throw denied('the actor chain is not the credential\'s')
  if (report.decision !== 'allowed') return
  if (!audienceList(claims.aud).includes(report.audience)) throw denied('the credential is not for this audience')
  if (claims.call !== undefined) {
    if (claims.call.tool !== report.tool) throw denied('the credential is bound to another tool')
    if (claims.call.args !== report.argumentsDigest) throw denied('the credential is bound to other arguments')
    return
  }
  const aud = audienceList(claims.aud)
  const granted = claims.authorization_details.some((g) => (g.locations ?? aud).includes(report.audience) && g.tools.some((t) => toolMatches(t, report.tool)))
  if (!granted) throw denied('the credential does not grant this tool at this audience')
}

/** The audit form of a verified hop (the same members and order as parseOfflineHops). */
function hopRecord(h: OfflineHop): JsonValue {
  return { jti: h.jti, holder: h.holder, parent: h.parent, depth: h.depth, kind: h.kind, iat: h.iat, exp: h.exp, tools: [...h.tools] }
}
