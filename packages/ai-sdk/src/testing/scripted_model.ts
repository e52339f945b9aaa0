import { MockLanguageModelV4 } from 'ai/test'

// the provider spec types, taken from the SDK's own mock so that only `ai` is needed
type LanguageModelV4CallOptions = Parameters<MockLanguageModelV4['doGenerate']>[0]
type LanguageModelV4GenerateResult = Awaited<ReturnType<MockLanguageModelV4['doGenerate']>>
type LanguageModelV4StreamResult = Awaited<ReturnType<MockLanguageModelV4['doStream']>>
type LanguageModelV4Content = LanguageModelV4GenerateResult['content'][number]
type LanguageModelV4Usage = LanguageModelV4GenerateResult['usage']
/** The prompt the SDK sends a model (provider spec v4). */
export type LanguageModelV4Prompt = LanguageModelV4CallOptions['prompt']
type LanguageModelV4StreamPart = LanguageModelV4StreamResult['stream'] extends ReadableStream<infer P> ? P : never

/** One tool call the scripted model emits. `input` is sent as the model would: JSON text. */
export interface ScriptedToolCall {
  readonly toolName: string
  readonly input: unknown
  /** Default: `call_<n>`, unique within the model instance. */
  readonly toolCallId?: string
}

/** What the model answers in one step: tool calls (optionally with text), or text only (the run ends). */
export type ScriptedReply =
  | { readonly text: string; readonly toolCalls?: undefined }
  | { readonly toolCalls: readonly ScriptedToolCall[]; readonly text?: string }

/**
 * One scripted step: a fixed reply, or a function of the prompt the SDK sent (e.g. to answer with
 * the tool result the model just read).
 */
export type ScriptedStep = ScriptedReply | ((prompt: LanguageModelV4Prompt) => ScriptedReply)

/** Options of {@link ScriptedLanguageModel}. */
export interface ScriptedModelOptions {
  /**
   * When the script is exhausted: `'throw'` (default) fails the model call, so a test whose agent
   * loops longer than scripted fails loudly; `'stop'` answers with empty text (the run ends).
   */
  readonly whenExhausted?: 'throw' | 'stop'
  /** `modelId` reported to the SDK (default `scripted`). */
  readonly modelId?: string
}

/** Shorthand for a step that calls tools: `callTools(['get_invoice', { id: 'inv_1' }], …)`. */
export function callTools(...calls: readonly (readonly [toolName: string, input: unknown])[]): ScriptedReply {
  return { toolCalls: calls.map(([toolName, input]) => ({ toolName, input })) }
}

const USAGE: LanguageModelV4Usage = {
  inputTokens: { total: 0, noCache: 0, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 0, text: 0, reasoning: 0 },
}

/**
 * A deterministic, scripted tool-calling language model for tests: the AI SDK's own
 * `MockLanguageModelV4` (`ai/test`) answering each model call (generate or stream) with the next
 * step of a script. Use it with `generateText`, `streamText` or `ToolLoopAgent` exactly where a real
 * model would go, and read {@link ScriptedLanguageModel.prompts} to assert what the model was sent.
 *
 * @example
 * ```ts
 * const model = new ScriptedLanguageModel([callTools(['get_invoice', { id: 'inv_1' }]), { text: 'done' }])
 * const result = await generateText({ model, tools, stopWhen: stepCountIs(5), prompt: 'look up inv_1' })
 * ```
 */
export class ScriptedLanguageModel extends MockLanguageModelV4 {
  /** Every prompt the SDK sent to this model, in order (what the model "read"). */
  readonly prompts: LanguageModelV4Prompt[] = []
  readonly #steps: ScriptedStep[]
  readonly #whenExhausted: 'throw' | 'stop'
  #next = 0
  #ids = 0

  constructor(steps: readonly ScriptedStep[], options: ScriptedModelOptions = {}) {
    if (!Array.isArray(steps)) throw new TypeError('steps must be a list of scripted steps')
    const whenExhausted = options.whenExhausted ?? 'throw'
    if (whenExhausted !== 'throw' && whenExhausted !== 'stop') throw new TypeError('whenExhausted must be throw or stop')
    let self: ScriptedLanguageModel | undefined
    super({
      provider: 'mandate-scripted',
      modelId: options.modelId ?? 'scripted',
      doGenerate: async (call) => (self as ScriptedLanguageModel).#generate(call),
      doStream: async (call) => (self as ScriptedLanguageModel).#stream(call),
    })
    self = this
    this.#steps = [...steps]
    this.#whenExhausted = whenExhausted
  }

  /** Steps not used yet. */
  get remaining(): number {
    return this.#steps.length - this.#next
  }

  /** Every prompt the model was sent, as one JSON text (for "never saw X" assertions). */
  seen(): string {
    return JSON.stringify(this.prompts)
  }

  /** Append steps (e.g. before resuming a run after an approval). */
  push(...steps: ScriptedStep[]): void {
    this.#steps.push(...steps)
  }

  #reply(call: LanguageModelV4CallOptions): LanguageModelV4Content[] {
    this.prompts.push(call.prompt)
    const step = this.#steps[this.#next]
    if (step === undefined) {
      if (this.#whenExhausted === 'throw') throw new Error(`the scripted model has no step ${this.#next + 1} (the script has ${this.#steps.length})`)
      return [{ type: 'text', text: '' }]
    }
    this.#next++
    const reply = typeof step === 'function' ? step(call.prompt) : step
    const content: LanguageModelV4Content[] = []
    if (reply.text !== undefined && reply.text.length > 0) content.push({ type: 'text', text: reply.text })
    for (const c of reply.toolCalls ?? []) {
      content.push({ type: 'tool-call', toolCallId: c.toolCallId ?? `call_${++this.#ids}`, toolName: c.toolName, input: JSON.stringify(c.input) })
    }
    if (content.length === 0) content.push({ type: 'text', text: '' })
    return content
  }

  #generate(call: LanguageModelV4CallOptions): LanguageModelV4GenerateResult {
    const content = this.#reply(call)
    const calls = content.some((c) => c.type === 'tool-call')
    return { content, finishReason: { unified: calls ? 'tool-calls' : 'stop', raw: undefined }, usage: USAGE, warnings: [] }
  }

  #stream(call: LanguageModelV4CallOptions): LanguageModelV4StreamResult {
    const content = this.#reply(call)
    const calls = content.some((c) => c.type === 'tool-call')
    const parts: LanguageModelV4StreamPart[] = [{ type: 'stream-start', warnings: [] }]
    content.forEach((c, i) => {
      if (c.type === 'text') {
        parts.push({ type: 'text-start', id: `t${i}` }, { type: 'text-delta', id: `t${i}`, delta: c.text }, { type: 'text-end', id: `t${i}` })
      } else if (c.type === 'tool-call') {
        parts.push(
          { type: 'tool-input-start', id: c.toolCallId, toolName: c.toolName },
          { type: 'tool-input-delta', id: c.toolCallId, delta: c.input },
          { type: 'tool-input-end', id: c.toolCallId },
          c,
        )
      }
    })
    parts.push({ type: 'finish', finishReason: { unified: calls ? 'tool-calls' : 'stop', raw: undefined }, usage: USAGE })
    const stream = new ReadableStream<LanguageModelV4StreamPart>({
      start(controller) {
        for (const p of parts) controller.enqueue(p)
        controller.close()
      },
    })
    return { stream }
  }
}
