// The MCP SDK `Client` over `createMandateHttpTransport`, driven by a minimal scripted agent loop
// (the "model" is the script; what it receives is the conversation this loop builds).
import { createMandateHttpTransport } from '@mandate/mcp'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { dump, refusalText, type Driver, type ToolOutput } from '../driver.js'
import { startGuardedMcpServer } from './mcp_server.js'

interface Msg { role: 'user' | 'assistant' | 'tool'; content: string; tool_calls?: unknown; tool_call_id?: string }

export const mcpClientDriver: Driver = {
  name: 'MCP SDK Client + createMandateHttpTransport',
  async open(world) {
    const server = await startGuardedMcpServer(world)
    return {
      audience: server.url,
      async run({ mandate, key, turns, approval }) {
        const traces: string[] = []
        const transport = createMandateHttpTransport(server.url, { authority: world.clientFor(key), key, mandate, approval: approval ? 'throw' : 'wait', approvalTimeoutMs: 10_000 })
        const client = new Client({ name: 'parity-agent', version: '1.0.0' })
        await client.connect(transport)
        // every JSON-RPC message in either direction is a trace
        const onmessage = transport.onmessage
        transport.onmessage = (m) => {
          traces.push(`recv ${dump(m)}`)
          onmessage?.(m)
        }
        const send = transport.send.bind(transport)
        transport.send = async (m, o) => {
          traces.push(`send ${dump(m)}`)
          return send(m, o)
        }
        const listed = await client.listTools()
        traces.push(`tools ${dump(listed)}`)
        const messages: Msg[] = [{ role: 'user', content: 'Handle the billing anomaly on inv_1' }]
        const modelInputs: string[] = []
        const outputs: ToolOutput[] = []
        try {
          for (const turn of turns) {
            modelInputs.push(dump(messages))
            if (turn.before) await turn.before()
            messages.push({ role: 'assistant', content: '', tool_calls: turn.calls })
            const results = await Promise.all(turn.calls.map(async (c): Promise<ToolOutput> => {
              const call = async () => {
                try {
                  return await client.callTool({ name: c.name, arguments: c.args })
                } catch (err) {
                  // the app's pause: the human decides at the Authority, then the call is made again
                  const id = (err as { code?: string; detail?: { approval_id?: unknown } }).code === 'APPROVAL_REQUIRED' ? (err as { detail?: { approval_id?: unknown } }).detail?.approval_id : undefined
                  if (!approval || typeof id !== 'string') throw err
                  traces.push(`approval_required ${id}`)
                  await approval.decide(id)
                  return await client.callTool({ name: c.name, arguments: c.args })
                }
              }
              try {
                const r = await call()
                const text = (r.content as { type: string; text?: string }[]).map((p) => p.text ?? '').join('')
                return { id: c.id, name: c.name, text, error: r.isError === true }
              } catch (err) {
                return { id: c.id, name: c.name, text: refusalText(err), error: true }
              }
            }))
            for (const r of results) {
              outputs.push(r)
              messages.push({ role: 'tool', content: r.text, tool_call_id: r.id })
            }
          }
          modelInputs.push(dump(messages))
        } finally {
          await client.close()
        }
        return { modelInputs, outputs, traces }
      },
      close: () => server.close(),
    }
  },
}
