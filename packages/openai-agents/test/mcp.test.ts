import { Agent, MCPServerStreamableHttp, run, setTraceProcessors, setTracingDisabled } from '@openai/agents'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { mandateMcpServer, mandateMcpTools, mandateTools } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { dump, findLeaks, MemoryTraceProcessor } from './support/leaks.js'
import { startGuardedMcp, startUnguardedMcp, type GuardedMcp } from './support/mcp_server.js'
import { toolOutputs } from './support/tools.js'
import { createWorld, SUBJECT, type World } from './support/world.js'

const traces = new MemoryTraceProcessor()
beforeAll(() => {
  setTraceProcessors([traces])
  setTracingDisabled(false)
})

describe('MCPServerStreamableHttp carrying per-call credentials (mandateMcpServer + mandateMcpTools)', () => {
  let w: World
  let mcp: GuardedMcp
  let open: Awaited<ReturnType<typeof startUnguardedMcp>>
  beforeEach(async () => {
    mcp = await startGuardedMcp(() => w)
    open = await startUnguardedMcp()
    w = await createWorld({
      audiences: [mcp.url, open.url],
      tools: [{ type: 'tool_access', tools: ['ledger_lookup'], locations: [mcp.url, open.url] }],
      policy: [{ effect: 'require_approval', tool: 'ledger_adjust' }],
    })
  })
  afterEach(async () => {
    await mcp.close()
    await open.close()
    await w.close()
  })

  const opts = () => ({ client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token })

  it('each tools/call presents its own credential, verified by the server\'s guard; parallel calls too', async () => {
    const server = mandateMcpServer({ url: mcp.url, issuer: w.authority.issuer, name: 'ledger' })
    await server.connect()
    try {
      const tools = await mandateMcpTools(server, opts())
      expect(tools.map((t) => t.name).sort()).toEqual(['ledger_adjust', 'ledger_lookup'])
      const model = new ScriptedModel([
        callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }, { name: 'ledger_lookup', arguments: { entry: 'e2' } }),
        reply('done'),
      ])
      const result = await run(new Agent({ name: 'ledger', tools, model }), 'look up e1 and e2')
      expect(result.finalOutput).toBe('done')
      expect(mcp.calls.map((c) => c.args).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([{ entry: 'e1' }, { entry: 'e2' }])
      expect(new Set(mcp.calls.map((c) => c.call.mandateId)).size).toBe(2)
      for (const c of mcp.calls) expect(c.call).toMatchObject({ subject: SUBJECT, actor: w.orchestrator.did, tool: 'ledger_lookup' })
      expect(JSON.stringify(toolOutputs(result.newItems))).toContain(`entry e1 for ${SUBJECT}`)
      expect(findLeaks([dump(model.requests), dump(result.newItems), ...traces.spans], w.issued)).toEqual([])
    } finally {
      await server.close()
    }
  })

  /** An Authority client that counts audience credentials (cached mode) and call credentials. */
  function countingClient() {
    const base = w.clientFor(w.orchestrator)
    const counts = { audience: 0, call: 0 }
    const client = {
      ...base,
      callCredential: (req: Parameters<typeof base.callCredential>[0]) => (counts.call++, base.callCredential(req)),
      audienceCredential: (req: Parameters<NonNullable<typeof base.audienceCredential>>[0]) => (counts.audience++, base.audienceCredential!(req)),
    }
    return { client, counts }
  }

  it("the cached call mode against a server that demands call credentials: the refused request goes once more with one", async () => {
    const server = mandateMcpServer({ url: mcp.url, issuer: w.authority.issuer, name: 'ledger' })
    await server.connect()
    try {
      const { client, counts } = countingClient()
      const tools = await mandateMcpTools(server, { ...opts(), client, mode: 'cached' })
      const model = new ScriptedModel([
        callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }),
        callTools({ name: 'ledger_lookup', arguments: { entry: 'e2' } }),
        reply('done'),
      ])
      const result = await run(new Agent({ name: 'ledger', tools, model }), 'look up e1, then e2')
      expect(result.finalOutput).toBe('done')
      expect(mcp.calls.map((c) => c.args)).toEqual([{ entry: 'e1' }, { entry: 'e2' }])
      // the first call tried the audience credential, was refused before anything ran, and fell back;
      // the tool is per-call from then on
      expect(counts).toEqual({ audience: 1, call: 2 })
      expect(new Set(mcp.calls.map((c) => c.call.mandateId)).size).toBe(2)
      expect(findLeaks([dump(model.requests), dump(result.newItems), ...traces.spans], w.issued)).toEqual([])
    } finally {
      await server.close()
    }
  })

  it('the cached call mode against a server that accepts audience credentials: one credential, a fresh proof per call', async () => {
    const relaxed = await startGuardedMcp(() => w, { requireCallBinding: false })
    const w2 = await createWorld({ audiences: [relaxed.url], tools: [{ type: 'tool_access', tools: ['ledger_lookup'], locations: [relaxed.url] }] })
    const previous = w
    w = w2
    const server = mandateMcpServer({ url: relaxed.url, issuer: w2.authority.issuer, name: 'ledger' })
    await server.connect()
    try {
      const { client, counts } = countingClient()
      const tools = await mandateMcpTools(server, { ...opts(), client, mode: 'cached' })
      const model = new ScriptedModel([
        callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }),
        callTools({ name: 'ledger_lookup', arguments: { entry: 'e2' } }),
        reply('done'),
      ])
      const result = await run(new Agent({ name: 'ledger', tools, model }), 'look up e1, then e2')
      expect(result.finalOutput).toBe('done')
      expect(relaxed.calls.map((c) => c.args)).toEqual([{ entry: 'e1' }, { entry: 'e2' }])
      expect(counts).toEqual({ audience: 1, call: 0 })
      expect(new Set(relaxed.calls.map((c) => c.call.mandateId)).size).toBe(1)
      expect(findLeaks([dump(model.requests), dump(result.newItems), ...traces.spans], w2.issued)).toEqual([])
    } finally {
      await server.close()
      await relaxed.close()
      w = previous
      await w2.close()
    }
  })

  it('a call the mandate does not allow is refused by the Authority before anything is sent', async () => {
    const server = mandateMcpServer({ url: mcp.url, issuer: w.authority.issuer, name: 'ledger' })
    await server.connect()
    try {
      const tools = await mandateMcpTools(server, opts())
      const model = new ScriptedModel([callTools({ name: 'ledger_adjust', arguments: { entry: 'e1', delta: 5 } }), reply('done')])
      const result = await run(new Agent({ name: 'ledger', tools, model }), 'adjust')
      expect(toolOutputs(result.newItems).call_1_1).toMatch(/^Refused by Mandate \(NARROWING_TOOL\)/)
      expect(mcp.calls).toEqual([])
    } finally {
      await server.close()
    }
  })

  it('the SDK\'s own MCP path (agent.mcpServers) cannot call a guarded tool without a credential', async () => {
    const server = mandateMcpServer({ url: mcp.url, issuer: w.authority.issuer, name: 'ledger' })
    await server.connect()
    try {
      const model = new ScriptedModel([callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }), reply('done')])
      const result = await run(new Agent({ name: 'ledger', mcpServers: [server], model }), 'look up')
      expect(mcp.calls).toEqual([])
      expect(toolOutputs(result.newItems).call_1_1).not.toContain('entry e1')
    } finally {
      await server.close()
    }
  })

  it('a remote tool on a transport that never presents the credential fails closed: CREDENTIAL_NOT_PRESENTED, result withheld', async () => {
    const plain = new MCPServerStreamableHttp({ url: open.url, name: 'open' })
    await plain.connect()
    try {
      const { getAllMcpTools } = await import('@openai/agents')
      const tools = mandateTools(await getAllMcpTools([plain]), { ...opts(), audience: open.url, remote: true })
      const model = new ScriptedModel([callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }), reply('done')])
      const result = await run(new Agent({ name: 'open', tools, model }), 'look up')
      const out = toolOutputs(result.newItems).call_1_1
      expect(out).toMatch(/^Refused by Mandate \(CREDENTIAL_NOT_PRESENTED\)/)
      expect(out).not.toContain('unguarded')
      expect(open.runs()).toBe(1) // it ran, unguarded: the result is withheld and the Authority told
      expect((await w.authority.audit.query()).filter((r) => JSON.stringify(r).includes('CREDENTIAL_NOT_PRESENTED'))).toHaveLength(1)
    } finally {
      await plain.close()
    }
  })

  it('an unguarded server behind mandateMcpServer gets no credential (RESOURCE_NOT_PROTECTED) and runs nothing', async () => {
    const server = mandateMcpServer({ url: open.url, issuer: w.authority.issuer, name: 'open' })
    await server.connect()
    try {
      const tools = await mandateMcpTools(server, opts())
      const model = new ScriptedModel([callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }), reply('done')])
      const result = await run(new Agent({ name: 'open', tools, model }), 'look up')
      expect(toolOutputs(result.newItems).call_1_1).toMatch(/^Refused by Mandate \(RESOURCE_NOT_PROTECTED\)/)
      expect(open.runs()).toBe(0)
    } finally {
      await server.close()
    }
  })

  it("the server's guard refusing the presented credential reaches the model as its typed refusal", async () => {
    const base = w.clientFor(w.orchestrator)
    // the task is revoked after the credential was issued: only the server's guard can see it
    const client = { ...base, callCredential: async (req: Parameters<typeof base.callCredential>[0]) => {
      const issued = await base.callCredential(req)
      await w.revoke({ txn: w.grant.claims.txn })
      return issued
    } }
    const server = mandateMcpServer({ url: mcp.url, issuer: w.authority.issuer, name: 'ledger' })
    await server.connect()
    try {
      const tools = await mandateMcpTools(server, { ...opts(), client })
      const model = new ScriptedModel([callTools({ name: 'ledger_lookup', arguments: { entry: 'e1' } }), reply('done')])
      const result = await run(new Agent({ name: 'ledger', tools, model }), 'look up')
      expect(toolOutputs(result.newItems).call_1_1).toMatch(/^Refused by Mandate \(REVOKED\)/)
      expect(mcp.calls).toEqual([])
      expect(findLeaks([dump(model.requests), dump(result.newItems), ...traces.spans], w.issued)).toEqual([])
    } finally {
      await server.close()
    }
  })
})
