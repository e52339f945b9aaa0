/**
 * Which chat model drives the demo's agents: the deterministic scripted model by default, or a real
 * provider model when its API key is in the environment (OPENAI_API_KEY, optionally OPENAI_BASE_URL
 * for any OpenAI-compatible endpoint; or ANTHROPIC_API_KEY). MANDATE_DEMO_MODEL names the model, or
 * `scripted` to keep the scripted one with a key set. Mandate's side does not change either way.
 */
import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { ScriptedChatModel, type Turn } from './scripted_model.js'

export type ModelChoice =
  | { provider: 'scripted' }
  | { provider: 'openai'; model: string; baseURL?: string }
  | { provider: 'anthropic'; model: string }

export function chooseModel(env: NodeJS.ProcessEnv = process.env): ModelChoice {
  const named = env.MANDATE_DEMO_MODEL?.trim() || undefined
  if (named === 'scripted') return { provider: 'scripted' }
  // a named Claude model goes to Anthropic (when its key is set), anything else to OpenAI first
  const wantsAnthropic = named !== undefined && /^claude/i.test(named)
  if (env.OPENAI_API_KEY && !(wantsAnthropic && env.ANTHROPIC_API_KEY)) {
    const baseURL = env.OPENAI_BASE_URL?.trim() || undefined
    if (baseURL !== undefined && !/^https?:\/\/[^\s/]+/.test(baseURL)) throw new TypeError('OPENAI_BASE_URL must be an http(s) URL')
    if (baseURL !== undefined) new URL(baseURL) // throws a clear TypeError on a malformed URL
    return { provider: 'openai', model: named ?? 'gpt-4.1-mini', ...(baseURL ? { baseURL } : {}) }
  }
  if (env.ANTHROPIC_API_KEY) return { provider: 'anthropic', model: named ?? 'claude-haiku-4-5' }
  return { provider: 'scripted' }
}

export function describeModel(choice: ModelChoice): string {
  if (choice.provider === 'scripted') return 'a deterministic scripted chat model (no network, no API key)'
  return `${choice.provider} ${choice.model}${choice.provider === 'openai' && choice.baseURL ? ` at ${new URL(choice.baseURL).origin}` : ''}`
}

/**
 * The chat model for one agent. `plan` is what the scripted model does; a real model gets the same
 * job from the agent's system prompt and decides for itself.
 */
export async function createChatModel(choice: ModelChoice, label: string, plan: readonly Turn[]): Promise<BaseChatModel> {
  switch (choice.provider) {
    case 'scripted':
      return new ScriptedChatModel(label, plan)
    case 'openai': {
      const { ChatOpenAI } = await import('@langchain/openai')
      return new ChatOpenAI({ model: choice.model, temperature: 0, ...(choice.baseURL ? { configuration: { baseURL: choice.baseURL } } : {}) })
    }
    case 'anthropic': {
      const { ChatAnthropic } = await import('@langchain/anthropic')
      return new ChatAnthropic({ model: choice.model, temperature: 0 })
    }
  }
}
