/**
 * An OpenAI-compatible chat-completions endpoint on 127.0.0.1 that answers like a model following
 * the demo's plans: which agent is asking is told by its system prompt, the turn by how many
 * assistant messages the conversation already holds. It lets the demo's real provider path
 * (ChatOpenAI → HTTP) run in tests without a network or a key, and records what the model was sent.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AFTER_REVOCATION_PLAN, AFTER_REVOCATION_PROMPT, BILLING_PROMPT, billingPlan, ORCHESTRATOR_PLAN, ORCHESTRATOR_PROMPT } from '../../src/story.js'
import type { Turn } from '../../src/scripted_model.js'

interface ChatMessage {
  role: string
  content?: unknown
}

export interface FakeOpenAI {
  url: string
  requests: { authorization: string | undefined; body: string }[]
  close(): Promise<void>
}

const text = (m: ChatMessage | undefined): string =>
  typeof m?.content === 'string' ? m.content : Array.isArray(m?.content) ? m.content.map((p: { text?: string }) => p.text ?? '').join('') : ''

function planFor(messages: ChatMessage[]): readonly Turn[] {
  const system = text(messages.find((m) => m.role === 'system' || m.role === 'developer'))
  if (system === ORCHESTRATOR_PROMPT) return ORCHESTRATOR_PLAN
  if (system === AFTER_REVOCATION_PROMPT) return AFTER_REVOCATION_PLAN
  if (system === BILLING_PROMPT) return billingPlan(text(messages.find((m) => m.role === 'user')).match(/INV-\d+/g) ?? [])
  throw new Error('unknown agent')
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: FakeOpenAI['requests'] = []
  let ids = 0
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req)
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')
        return
      }
      requests.push({ authorization: req.headers.authorization, body })
      const request = JSON.parse(body) as { model: string; messages: ChatMessage[]; stream?: boolean }
      const turn = planFor(request.messages)[request.messages.filter((m) => m.role === 'assistant').length]
      const toolCalls = turn !== undefined && 'calls' in turn
        ? turn.calls.map((c) => ({ id: `call_${++ids}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } }))
        : undefined
      const answer = turn !== undefined && 'answer' in turn && typeof turn.answer === 'string' ? turn.answer : 'Done.'
      const message = toolCalls ? { role: 'assistant', content: null, tool_calls: toolCalls } : { role: 'assistant', content: answer }
      const finish = toolCalls ? 'tool_calls' : 'stop'
      const base = { id: `chatcmpl-${++ids}`, created: Math.floor(Date.now() / 1000), model: request.model }
      if (request.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        const delta = toolCalls
          ? { role: 'assistant', content: null, tool_calls: toolCalls.map((t, index) => ({ index, ...t })) }
          : { role: 'assistant', content: answer }
        res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`)
        res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: finish }] })}\n\n`)
        res.end('data: [DONE]\n\n')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        ...base, object: 'chat.completion',
        choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }))
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: String(err) } }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}
