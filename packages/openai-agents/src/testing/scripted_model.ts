import { Usage, type AgentInputItem, type Model, type ModelProvider, type ModelRequest, type ModelResponse, type protocol } from '@openai/agents'

/** One tool call the scripted model makes. */
export interface ScriptedToolCall {
  /** The tool (or handoff tool, e.g. `transfer_to_researcher`) to call. */
  readonly name: string
  /** The arguments: a JSON string as a model emits it, or a value serialised with `JSON.stringify`. */
  readonly arguments?: unknown
  /** The call id (default: `call_<turn>_<index>`). */
  readonly callId?: string
}

/** What the model answers on one turn. */
export type ScriptedTurn =
  | { readonly type: 'tool_calls'; readonly calls: readonly ScriptedToolCall[] }
  | { readonly type: 'text'; readonly text: string }

/**
 * One step of the script: a fixed turn, or a function of the request the model received (to answer
 * from what a tool returned, say). `turn` counts this model's calls from 0.
 */
export type ScriptStep = ScriptedTurn | ((request: ModelRequest, turn: number) => ScriptedTurn)

/** The model calls these tools in one turn (several at once are parallel tool calls). */
export function callTools(...calls: ScriptedToolCall[]): ScriptedTurn {
  return { type: 'tool_calls', calls }
}

/** The model answers with this text, which ends the run when no tool call remains. */
export function reply(text: string): ScriptedTurn {
  return { type: 'text', text }
}

/** What the model received on one call: the instructions, the input items and the tools it was offered. */
export interface RecordedRequest {
  readonly systemInstructions: string | undefined
  /** The input as the SDK sent it (a deep copy, so later turns cannot change it). */
  readonly input: string | AgentInputItem[]
  readonly tools: readonly string[]
  readonly handoffs: readonly string[]
}

export interface ScriptedModelOptions {
  /**
   * When the script has no step left: `'error'` (default) fails the model call, so a test notices a
   * run that goes on longer than scripted; `'repeat'` repeats the last step (a model that keeps
   * retrying the same call, e.g. to test how a run stops).
   */
  readonly whenExhausted?: 'error' | 'repeat'
}

/**
 * A deterministic stand-in for an LLM that implements the Agents SDK's `Model` interface: each call
 * answers with the next step of its script (tool calls or text). No network, no API key. Give it to
 * an `Agent` as `model`, or serve it from a {@link ScriptedModelProvider}.
 *
 * Every request is recorded in {@link ScriptedModel.requests} — exactly what a real model would have
 * read, so a test can check that no credential ever reached it.
 *
 * ```ts
 * const agent = new Agent({ name: 'billing', tools: [refund], model: new ScriptedModel([
 *   callTools({ name: 'refund', arguments: { invoice: 'inv_1', amount: 20 } }),
 *   reply('done'),
 * ]) })
 * const result = await run(agent, 'refund inv_1')
 * ```
 */
export class ScriptedModel implements Model {
  /** Every request this model received, oldest first. */
  readonly requests: RecordedRequest[] = []
  readonly #steps: readonly ScriptStep[]
  readonly #whenExhausted: 'error' | 'repeat'
  #turn = 0

  constructor(steps: readonly ScriptStep[], options: ScriptedModelOptions = {}) {
    if (!Array.isArray(steps)) throw new TypeError('steps must be a list of scripted turns')
    const whenExhausted = options.whenExhausted ?? 'error'
    if (whenExhausted !== 'error' && whenExhausted !== 'repeat') throw new TypeError('whenExhausted must be error or repeat')
    if (whenExhausted === 'repeat' && steps.length === 0) throw new TypeError('a repeating script needs at least one step')
    this.#steps = [...steps]
    this.#whenExhausted = whenExhausted
  }

  /** Steps not yet used. */
  get remaining(): number {
    return Math.max(0, this.#steps.length - this.#turn)
  }

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    const { output, responseId } = this.#respond(request)
    return { usage: new Usage({ requests: 1 }), output, responseId }
  }

  async *getStreamedResponse(request: ModelRequest): AsyncIterable<protocol.StreamEvent> {
    const { output, responseId } = this.#respond(request)
    yield { type: 'response_started' }
    for (const item of output) {
      if (item.type !== 'message' || item.role !== 'assistant') continue
      for (const part of item.content) if (part.type === 'output_text') yield { type: 'output_text_delta', delta: part.text }
    }
    yield {
      type: 'response_done',
      response: {
        id: responseId,
        usage: { requests: 1, inputTokens: 0, outputTokens: 0, totalTokens: 0 },
        output,
      },
    }
  }

  #respond(request: ModelRequest): { output: protocol.OutputModelItem[]; responseId: string } {
    const turn = this.#turn
    this.requests.push({
      systemInstructions: request.systemInstructions,
      input: structuredClone(request.input),
      tools: request.tools.map((t) => t.name),
      handoffs: request.handoffs.map((h) => h.toolName),
    })
    let step = this.#steps[turn]
    if (step === undefined) {
      if (this.#whenExhausted === 'error') throw new Error(`ScriptedModel: no scripted step left for model call ${turn + 1} (the script has ${this.#steps.length})`)
      step = this.#steps[this.#steps.length - 1] as ScriptStep
    }
    this.#turn = turn + 1
    const answer = typeof step === 'function' ? step(request, turn) : step
    return { output: outputOf(answer, turn), responseId: `scripted_${turn + 1}` }
  }
}

function outputOf(answer: ScriptedTurn, turn: number): protocol.OutputModelItem[] {
  if (answer?.type === 'text') {
    return [{ type: 'message', role: 'assistant', status: 'completed', id: `msg_${turn + 1}`, content: [{ type: 'output_text', text: answer.text }] }]
  }
  if (answer?.type === 'tool_calls') {
    return answer.calls.map((c, i) => ({
      type: 'function_call',
      id: `fc_${turn + 1}_${i + 1}`,
      callId: c.callId ?? `call_${turn + 1}_${i + 1}`,
      name: c.name,
      status: 'completed',
      arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}),
    }))
  }
  throw new TypeError('a scripted step must be callTools(...) or reply(...)')
}

/**
 * A `ModelProvider` serving scripted models by name (`new Runner({ modelProvider })`), so agents
 * that name a model (`model: 'gpt-4.1'`) run against a script instead. A name without a script
 * fails the run: nothing falls back to a real provider.
 */
export class ScriptedModelProvider implements ModelProvider {
  readonly #models: ReadonlyMap<string, Model>
  readonly #fallback: Model | undefined

  /** `models`: one model for every name, or a model per name. */
  constructor(models: Model | Readonly<Record<string, Model>>) {
    if (isModel(models)) {
      this.#models = new Map()
      this.#fallback = models
    } else {
      this.#models = new Map(Object.entries(models))
      this.#fallback = undefined
    }
  }

  getModel(modelName?: string): Model {
    const model = (modelName !== undefined ? this.#models.get(modelName) : undefined) ?? this.#fallback
    if (!model) throw new Error(`ScriptedModelProvider: no scripted model named ${JSON.stringify(modelName ?? '(default)')}`)
    return model
  }
}

function isModel(value: unknown): value is Model {
  return typeof value === 'object' && value !== null && typeof (value as Model).getResponse === 'function'
}
