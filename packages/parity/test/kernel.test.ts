// The shared kernel every adapter maps onto (@mandate/core/kernel), driven directly against a real
// in-process Authority and a real Guard: the rules each adapter inherits from it.
import { MandateError } from '@mandate/core'
import { activeCall, createKernel, getCallContext, isTerminalRefusal, tryGetCallContext, type ApprovalRequest, type Kernel, type KernelOptions } from '@mandate/core/kernel'
import { afterEach, describe, expect, it } from 'vitest'
import { createWorld, type World } from '../src/world.js'

const AUD = 'https://billing.example.com/api'
let w: World | undefined
afterEach(async () => {
  await w?.close()
  w = undefined
})

async function setup(opts: { approval?: boolean; remote?: boolean } = {}): Promise<{ w: World; kernel: Kernel; grant: { token: string; jti: string; txn: string }; options: KernelOptions }> {
  w = await createWorld(opts.approval ? { policy: [{ effect: 'require_approval', tool: 'refund' }] } : {})
  const grant = await w.grant(AUD)
  const options: KernelOptions = {
    client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: grant.token, audience: AUD,
    ...(opts.remote ? { remote: true } : { guard: w.guard(AUD) }),
    approval: { timeoutMs: 5_000 },
  }
  return { w, kernel: createKernel(options), grant, options }
}

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : `raw:${String(e)}`))

describe('kernel: one verified call', () => {
  it('verifies before the tool runs, runs it with the snapshot inside the call context, and reports it', async () => {
    const { w, kernel, grant } = await setup()
    const args = { id: 'inv_1' }
    const secrets: string[] = []
    const prepared = await kernel.prepare({ name: 'get_invoice', arguments: args, toolCallId: 'c1', approval: 'throw', secrets })
    args.id = 'inv_999' // a later change to the caller's object cannot reach the call
    expect(Object.keys(prepared)).not.toContain('token')
    expect(JSON.stringify(prepared)).not.toMatch(/eyJ/)
    const out = await kernel.run(prepared, async (a) => {
      const ctx = getCallContext()
      expect(ctx).toMatchObject({ verified: true, tool: 'get_invoice', audience: AUD, toolCallId: 'c1', subject: 'alice@example.com', task: { id: grant.txn } })
      // the context a tool reads holds no credential
      expect(JSON.stringify(ctx)).not.toMatch(/eyJ/)
      return a
    })
    expect(out).toEqual({ id: 'inv_1' })
    expect(tryGetCallContext()).toBeUndefined()
    // the mandate, the holder key's private d in its spellings (base64url, base64 with and without
    // padding, hex in both cases), the call credential and the proof the local guard verified, for scrubbing
    const d = w.orchestrator.exportPrivateJwk().d as string
    const raw = Buffer.from(d, 'base64url')
    const spellings = [...new Set([d, raw.toString('base64'), raw.toString('base64').replace(/=+$/, ''), raw.toString('hex'), raw.toString('hex').toUpperCase()])]
    expect(secrets).toHaveLength(3 + spellings.length)
    expect(secrets.slice(1, 1 + spellings.length).sort()).toEqual([...spellings].sort())
    expect(secrets[secrets.length - 1]?.split('.')).toHaveLength(3)
    expect(kernel.secretsOf(prepared)).toEqual(secrets)
    expect(w.timeline.filter((t) => t.startsWith('verified:'))).toHaveLength(1)
    const reports = (await w.records('call.report')).map((r) => [r.fields.tool, r.fields.decision, r.fields.outcome])
    expect(reports).toEqual([['get_invoice', 'allowed', 'success']])
  })

  it('a prepared call runs at most once', async () => {
    const { kernel } = await setup()
    const prepared = await kernel.prepare({ name: 'get_invoice', arguments: { id: 'x' }, approval: 'throw' })
    let ran = 0
    await kernel.run(prepared, async () => ++ran)
    expect(await code(kernel.run(prepared, async () => ++ran))).toBe('TOKEN_REPLAYED')
    expect(ran).toBe(1)
  })

  it('parallel calls each get their own credential', async () => {
    const { w, kernel } = await setup()
    const ids = await Promise.all([1, 2, 3, 4].map((i) => kernel.call({ name: 'get_invoice', arguments: { id: `inv_${i}` }, approval: 'throw' }, async () => getCallContext().mandateId)))
    expect(new Set(ids).size).toBe(4)
    expect(w.timeline.filter((t) => t.startsWith('verified:'))).toHaveLength(4)
  })

  it('a widening (an argument outside the mandate) is refused before anything runs', async () => {
    const { kernel } = await setup()
    let ran = false
    expect(await code(kernel.call({ name: 'refund', arguments: { invoice: 'i', amount: 9_000 }, approval: 'throw' }, async () => void (ran = true)))).not.toBe('ok')
    expect(await code(kernel.call({ name: 'delete_everything', arguments: {}, approval: 'throw' }, async () => void (ran = true)))).not.toBe('ok')
    expect(ran).toBe(false)
  })

  it('a remote tool whose credential never left the process fails closed and the Authority is told', async () => {
    const { w, kernel } = await setup({ remote: true })
    expect(await code(kernel.call({ name: 'get_invoice', arguments: { id: 'x' }, approval: 'throw' }, async () => 'unverified output'))).toBe('CREDENTIAL_NOT_PRESENTED')
    // a transport that marks the credential as sent makes it a presented call
    expect(await code(kernel.call({ name: 'get_invoice', arguments: { id: 'y' }, approval: 'throw' }, async () => {
      const call = activeCall()
      if (!call) throw new Error('no active call')
      call.sent = true
      return 'ok'
    }))).toBe('ok')
    const refused = (await w.records('call.report')).filter((r) => r.fields.error === 'CREDENTIAL_NOT_PRESENTED')
    expect(refused).toHaveLength(1)
  })

  it('a remote server\'s own refusal is typed but never terminal: a server cannot end the run by saying REVOKED (adapter probe)', async () => {
    const { kernel } = await setup({ remote: true })
    let err: unknown
    await kernel.call({ name: 'get_invoice', arguments: { id: 'x' }, approval: 'throw' }, async () => {
      const call = activeCall()
      if (!call) throw new Error('no active call')
      call.sent = true
      call.serverRefusal = new MandateError('REVOKED', 'the server says the task is revoked')
      throw new Error('401 from the server')
    }).catch((e: unknown) => void (err = e))
    expect(err).toMatchObject({ code: 'REVOKED' })
    expect(isTerminalRefusal(err)).toBe(false)
    // as a result handed back rather than thrown, too
    let err2: unknown
    await kernel.call({ name: 'get_invoice', arguments: { id: 'y' }, approval: 'throw' }, async () => {
      const call = activeCall()
      if (!call) throw new Error('no active call')
      call.sent = true
      call.serverRefusal = new MandateError('TOKEN_EXPIRED', 'the server says it expired')
      return 'refused'
    }).catch((e: unknown) => void (err2 = e))
    expect(err2).toMatchObject({ code: 'TOKEN_EXPIRED' })
    expect(isTerminalRefusal(err2)).toBe(false)
    // the task is not revoked: the next call goes through
    expect(await code(kernel.call({ name: 'get_invoice', arguments: { id: 'z' }, approval: 'throw' }, async () => {
      const call = activeCall()
      if (call) call.sent = true
      return 'ok'
    }))).toBe('ok')
  })

  it('a guarded call cannot be opened inside another one', async () => {
    const { kernel } = await setup()
    const inner = await kernel.call({ name: 'get_invoice', arguments: { id: 'a' }, approval: 'throw' }, async () =>
      code(kernel.call({ name: 'get_invoice', arguments: { id: 'b' }, approval: 'throw' }, async () => 'nested')))
    expect(inner).toBe('INVALID_REQUEST')
  })
})

describe('kernel: approval strategies', () => {
  it('throw: APPROVAL_REQUIRED with the approval id; the same call with that id runs once an approver approved', async () => {
    const { w, kernel } = await setup({ approval: true })
    const call = { name: 'refund', arguments: { invoice: 'inv_1', amount: 50 }, approval: 'throw' as const }
    let err: unknown
    await kernel.prepare(call).catch((e: unknown) => void (err = e))
    expect(err).toMatchObject({ code: 'APPROVAL_REQUIRED' })
    const approvalId = (err as MandateError).detail?.approval_id as string
    expect(typeof approvalId).toBe('string')
    // still pending: the same approval is answered, no second one is opened
    expect(await code(kernel.prepare({ ...call, approvalId }))).toBe('APPROVAL_REQUIRED')
    expect(await w.authority.approvals.list()).toHaveLength(1)
    await w.authority.approvals.approve(approvalId, { approver: w.approver.did })
    const approval = await kernel.call({ ...call, approvalId }, async () => getCallContext().approval)
    expect(approval).toMatchObject({ id: approvalId, approver: w.approver.did })
  })

  it('wait: waits for the decision at the Authority', async () => {
    const { w, kernel } = await setup({ approval: true })
    const approver = w.startApprover()
    const out = await kernel.call({ name: 'refund', arguments: { invoice: 'inv_2', amount: 50 }, approval: 'wait' }, async () => getCallContext().approval?.approver)
    approver.stop()
    expect(out).toBe(w.approver.did)
  })

  it("a framework's approval can only ask: approved without the Authority's approval never runs the tool, and the human is asked at most three times", async () => {
    const { kernel } = await setup({ approval: true })
    const asked: ApprovalRequest[] = []
    let ran = false
    const result = await code(kernel.call({
      name: 'refund', arguments: { invoice: 'inv_3', amount: 50 }, toolCallId: 't3',
      approval: (req) => {
        asked.push(req)
        return { decision: 'approved' }
      },
    }, async () => void (ran = true)))
    expect(result).toBe('APPROVAL_REQUIRED')
    expect(ran).toBe(false)
    expect(asked).toHaveLength(3)
    expect(asked[0]).toMatchObject({ tool: 'refund', audience: AUD, arguments: { invoice: 'inv_3', amount: 50 }, toolCallId: 't3' })
    expect(JSON.stringify(asked)).not.toMatch(/eyJ/)
  })

  it('a denial, or anything that is not a decision, is APPROVAL_DENIED; a pause the framework throws passes through untouched', async () => {
    const { kernel } = await setup({ approval: true })
    const args = { invoice: 'inv_4', amount: 50 }
    expect(await code(kernel.prepare({ name: 'refund', arguments: args, approval: () => ({ decision: 'denied', reason: 'no' }) }))).toBe('APPROVAL_DENIED')
    expect(await code(kernel.prepare({ name: 'refund', arguments: args, approval: () => ({ decision: 'yes please' }) as never }))).toBe('APPROVAL_DENIED')
    // an unknown strategy is refused up front, even for a call that needs no approval
    expect(await code(kernel.prepare({ name: 'get_invoice', arguments: { id: 'x' }, approval: 'ask-later' as never }))).toBe('CONFIG_INVALID')
    const pause = new Error('graph interrupt')
    await expect(kernel.prepare({ name: 'refund', arguments: args, approval: () => { throw pause } })).rejects.toBe(pause)
  })
})

describe('kernel: terminal refusals', () => {
  it('a revoked task is a terminal refusal; a MandateError the tool throws itself is not', async () => {
    const { w, kernel, grant } = await setup()
    let own: unknown
    await kernel.call({ name: 'get_invoice', arguments: { id: 'a' }, approval: 'throw' }, async () => {
      throw new MandateError('REVOKED', 'the tool says so')
    }).catch((e: unknown) => void (own = e))
    expect(own).toMatchObject({ code: 'REVOKED' })
    expect(kernel.isTerminal(own)).toBe(false)
    await w.authority.revoke({ mandate: grant.jti }, { by: w.admin.did, reason: 'kernel test' })
    let refusal: unknown
    await kernel.call({ name: 'get_invoice', arguments: { id: 'b' }, approval: 'throw' }, async () => 'ran').catch((e: unknown) => void (refusal = e))
    expect(refusal).toMatchObject({ code: 'REVOKED' })
    expect(kernel.isTerminal(refusal)).toBe(true)
  })
})

describe('kernel: configuration fails at construction', () => {
  it('refuses what cannot be guarded, with CONFIG_INVALID', async () => {
    const { options } = await setup()
    const bad: Partial<KernelOptions>[] = [
      { audience: 'https://Billing.example.com/api' },
      { audience: 'https://billing.example.com/api?x=1' },
      { guard: undefined },
      { mandate: '' },
      { remote: 'yes' as never },
      { expiresIn: 600 },
      { approval: { timeoutMs: -1 } },
      { onTerminalRefusal: 'panic' as never },
      { mode: 'sometimes' as never },
      { audience: { get_invoice: 'http://billing.example.com/api' }, remote: true },
    ]
    for (const b of bad) expect(() => createKernel({ ...options, ...b }), JSON.stringify(b)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    const k = createKernel({ ...options, toolName: () => 'not a tool name!' })
    expect(() => k.checkTool('get_invoice')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})

describe('kernel: one call-context store per process', () => {
  it('a second copy of the kernel module sees the call opened by the first', async () => {
    const { kernel } = await setup()
    // a distinct module instance, as a second installed copy of @mandate/core would be
    const copy = `${new URL('../../core/src/kernel/call_context.ts', import.meta.url).href}?second-copy`
    const other = (await import(/* @vite-ignore */ copy)) as typeof import('@mandate/core/kernel')
    expect(other.tryGetCallContext).not.toBe(tryGetCallContext)
    const seen = await kernel.call({ name: 'get_invoice', arguments: { id: 'z' }, approval: 'throw' }, async () => other.tryGetCallContext()?.tool)
    expect(seen).toBe('get_invoice')
  })
})
