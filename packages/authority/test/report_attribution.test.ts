// An agent's report of its own call is checked against the credential the Authority issued (outside
// probe: the subject and the actor chain were taken from the report as sent, so an agent could put
// another principal's name on its calls; an allowed call of a tool the credential never granted
// was recorded as allowed). Real in-process Authority, real exchange, real keys.
import { describe, expect, it } from 'vitest'
import { decodeMandateUnverified, type AuthorityClient, type CallReport } from '@mandate/core'
import { createAuthority, MemoryStore } from '../src/index.js'
import { AUD, manualClock, registerTask } from './helpers.js'

type CallClaims = { jti: string; txn: string; call: { args: string } }

/** A call credential for billing.refund from `client`, decoded (the claims a report must match). */
async function callClaims(client: Pick<AuthorityClient, 'callCredential'>, mandate: string, amount = 5): Promise<CallClaims> {
  const issued = await client.callCredential({ mandate, audience: AUD, tool: 'billing.refund', arguments: { amount } })
  if (issued.status !== 'issued') throw new Error('expected a credential')
  return decodeMandateUnverified(issued.token).payload as CallClaims
}

describe('an agent reports only what its credential says', () => {
  it('subject, actor chain, audience and tool must be the issued credential\'s', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore() })
    const { agents: [a, m], root } = await registerTask(authority, 2)
    const client = authority.clientFor(a!)
    const claims = await callClaims(client, root.token)
    const report: CallReport = {
      mandateId: claims.jti, txn: claims.txn, tool: 'billing.refund', audience: AUD, argumentsDigest: claims.call.args, decision: 'allowed',
      outcome: 'success', actorChain: [a!.did], subject: 'alice',
    }
    const denied = async (r: CallReport, reporter = a!.did) =>
      expect(authority.reportCall(r, { reporter })).rejects.toMatchObject({ code: 'ACCESS_DENIED' })
    await denied({ ...report, subject: 'bob' })
    await denied({ ...report, actorChain: ['did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', a!.did] })
    await denied({ ...report, tool: 'billing.get' })
    await denied({ ...report, audience: 'http://127.0.0.1:7600/api' })
    // a call credential binds its arguments: a report cannot name others
    await denied({ ...report, argumentsDigest: 'A'.repeat(43) })
    // hop summaries without the chain they came from are never recorded for an agent
    await denied({ ...report, offlineHops: [{ jti: claims.jti, holder: a!.did, parent: root.claims.jti, depth: 1, kind: 'call', iat: 1, exp: 2, tools: ['*'] }] })
    // another agent cannot report it, not even naming itself last
    await denied({ ...report, actorChain: [m!.did] }, m!.did)
    expect(await authority.audit.query({ type: 'call.report' })).toHaveLength(0)
    // a refused call may name any tool (that is often why it was refused); the rest still holds
    await authority.reportCall({ ...report, tool: 'files.delete', decision: 'refused', errorCode: 'TOOL_NOT_ALLOWED' }, { reporter: a!.did })
    const rec = await authority.reportCall(report, { reporter: a!.did })
    expect(rec.fields).toMatchObject({ agent: a!.did, subject: 'alice', tool: 'billing.refund' })
    await authority.close()
  })

  it('a credential long expired cannot be reported as used (review)', async () => {
    const clock = manualClock()
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore(), now: clock.now })
    const { agents: [a], root } = await registerTask(authority, 1)
    const claims = await callClaims(authority.clientFor(a!), root.token)
    const report: CallReport = {
      mandateId: claims.jti, txn: claims.txn, tool: 'billing.refund', audience: AUD, argumentsDigest: claims.call.args, decision: 'allowed', actorChain: [a!.did], subject: 'alice',
    }
    // a long tool run: reported after the 60 s credential expired, within the window
    clock.advance(120_000)
    await authority.reportCall(report, { reporter: a!.did })
    clock.advance(1_000_000)
    await expect(authority.reportCall(report, { reporter: a!.did })).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringContaining('expired') })
    await authority.close()
  })

  it('the call of a single-use credential is reported once; a reusable credential\'s every call is (review 2d)', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore() })
    const { agents: [a], root } = await registerTask(authority, 1)
    const client = authority.clientFor(a!)
    const claims = await callClaims(client, root.token)
    const report: CallReport = {
      mandateId: claims.jti, txn: claims.txn, tool: 'billing.refund', audience: AUD, argumentsDigest: claims.call.args, decision: 'allowed', outcome: 'success', actorChain: [a!.did], subject: 'alice',
    }
    // a refusal, and a report refused for what it claims, never take the one report
    await authority.reportCall({ ...report, decision: 'refused', errorCode: 'PROOF_INVALID' }, { reporter: a!.did })
    await expect(authority.reportCall({ ...report, subject: 'bob' }, { reporter: a!.did })).rejects.toMatchObject({ code: 'ACCESS_DENIED' })
    // replayed concurrently: exactly one is recorded
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => authority.reportCall(report, { reporter: a!.did })))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'INVALID_REQUEST', detail: { reason: 'duplicate' } })
    await expect(authority.reportCall(report, { reporter: a!.did })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    expect((await authority.audit.query({ type: 'call.report' })).filter((r) => r.fields.decision === 'allowed')).toHaveLength(1)

    // an audience credential serves many calls: each is reported
    const aud = await client.audienceCredential?.({ mandate: root.token, audience: AUD })
    if (!aud) throw new Error('the in-process client has audienceCredential')
    const ac = decodeMandateUnverified(aud.token).payload as { jti: string }
    const again = { ...report, mandateId: ac.jti, argumentsDigest: 'B'.repeat(43) }
    await authority.reportCall(again, { reporter: a!.did })
    await authority.reportCall(again, { reporter: a!.did })
    expect((await authority.audit.query({ type: 'call.report' })).filter((r) => r.fields.jti === ac.jti)).toHaveLength(2)
    await authority.close()
  })

  it('every reported member has its shape, whatever the decision: no bidi tool names, no invented codes; refused reports are bounded per agent (dashboard probe)', async () => {
    const clock = manualClock()
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore(), now: clock.now })
    const { agents: [a], root } = await registerTask(authority, 1)
    const claims = await callClaims(authority.clientFor(a!), root.token)
    const refused: CallReport = {
      mandateId: claims.jti, txn: claims.txn, tool: 'billing.refund', audience: AUD, argumentsDigest: claims.call.args, decision: 'refused', errorCode: 'PROOF_INVALID', actorChain: [a!.did], subject: 'alice',
    }
    const bad = (r: CallReport) => expect(authority.reportCall(r, { reporter: a!.did })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    // a refused call that named no valid tool is recorded under a placeholder, the name escaped (review)
    const odd = await authority.reportCall({ ...refused, tool: '\u202ebilling.refund allowed, verified by billing-guard' }, { reporter: a!.did })
    expect(odd.fields).toMatchObject({ tool: 'invalid-tool-name', tool_requested: '\\u{202e}billing.refund allowed, verified by billing-guard' })
    expect((await authority.reportCall({ ...refused, tool: 'get weather' }, { reporter: a!.did })).fields).toMatchObject({ tool: 'invalid-tool-name', tool_requested: 'get weather' })
    await bad({ ...refused, errorCode: 'E\u202eLIAF' })
    await bad({ ...refused, errorCode: 'not a code' })
    await bad({ ...refused, audience: 'http://x.example/\u2066a' })
    await bad({ ...refused, argumentsDigest: 'a b' })
    await bad({ ...refused, subject: 'alice\u200b' })
    // an allowed report under a wildcard grant (billing.*) cannot smuggle a non-name through the pattern
    const wild = await authority.clientFor(a!).audienceCredential?.({ mandate: root.token, audience: AUD })
    if (!wild) throw new Error('expected an audience credential')
    const wc = decodeMandateUnverified(wild.token).payload as { jti: string }
    await bad({ ...refused, mandateId: wc.jti, decision: 'allowed', errorCode: undefined, tool: 'billing.\u202erefund' } as CallReport)
    expect(await authority.audit.query({ type: 'call.report' })).toHaveLength(2)
    // refused reports: a burst, then a bounded rate per agent
    let accepted = 2
    let capped: unknown
    for (let i = 0; i < 130 && capped === undefined; i++) {
      await authority.reportCall(refused, { reporter: a!.did }).then(() => accepted++, (e: unknown) => void (capped = e))
    }
    expect(accepted).toBe(120)
    expect(capped).toMatchObject({ code: 'CAPACITY_EXCEEDED' })
    clock.advance(1_000)
    await authority.reportCall(refused, { reporter: a!.did })
    await authority.close()
  })

  it('report keys have their own budget: reports never crowd out the agent\'s client assertions and proofs (review)', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore(), singleUse: { perPrincipal: 6 } })
    const { agents: [a], root } = await registerTask(authority, 1)
    const keyed = authority.clientFor(a!, { authentication: 'key' })
    for (let i = 0; i < 4; i++) {
      const c = await callClaims(keyed, root.token, i + 1)
      await authority.reportCall({ mandateId: c.jti, txn: c.txn, tool: 'billing.refund', audience: AUD, argumentsDigest: c.call.args, decision: 'allowed', actorChain: [a!.did], subject: 'alice' }, { reporter: a!.did })
    }
    // signed exchanges (a client assertion and a DPoP proof each) still have the whole budget of 6
    const signed = authority.clientFor(a!, { authentication: 'signed' })
    for (let i = 0; i < 3; i++) expect((await signed.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 10 + i } })).status).toBe('issued')
    await authority.close()
  })
})
