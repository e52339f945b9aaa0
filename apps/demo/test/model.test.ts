import { describe, expect, it } from 'vitest'
import { chooseModel, describeModel } from '../src/model.js'

describe('chooseModel', () => {
  it('is the scripted model without a provider key, or when asked for by name', () => {
    expect(chooseModel({})).toEqual({ provider: 'scripted' })
    expect(chooseModel({ OPENAI_API_KEY: 'k', MANDATE_DEMO_MODEL: 'scripted' })).toEqual({ provider: 'scripted' })
  })

  it('picks the provider whose key is set, with its default model', () => {
    expect(chooseModel({ OPENAI_API_KEY: 'k' })).toEqual({ provider: 'openai', model: 'gpt-4.1-mini' })
    expect(chooseModel({ ANTHROPIC_API_KEY: 'k' })).toEqual({ provider: 'anthropic', model: 'claude-haiku-4-5' })
    expect(chooseModel({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' })).toEqual({ provider: 'openai', model: 'gpt-4.1-mini', baseURL: 'http://127.0.0.1:9/v1' })
  })

  it('sends a named Claude model to Anthropic when both keys are set', () => {
    expect(chooseModel({ OPENAI_API_KEY: 'k', ANTHROPIC_API_KEY: 'k', MANDATE_DEMO_MODEL: 'claude-sonnet-4-5' })).toEqual({ provider: 'anthropic', model: 'claude-sonnet-4-5' })
    expect(chooseModel({ OPENAI_API_KEY: 'k', ANTHROPIC_API_KEY: 'k', MANDATE_DEMO_MODEL: 'gpt-4.1' })).toEqual({ provider: 'openai', model: 'gpt-4.1' })
  })

  it('refuses a malformed OPENAI_BASE_URL with a clear error', () => {
    expect(() => chooseModel({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: 'not a url' })).toThrow(/OPENAI_BASE_URL/)
    expect(() => chooseModel({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: 'ftp://x/v1' })).toThrow(/OPENAI_BASE_URL/)
  })

  it('describes the choice without the key', () => {
    expect(describeModel(chooseModel({ OPENAI_API_KEY: 'sk-secret', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }))).toBe('openai gpt-4.1-mini at http://127.0.0.1:9')
  })
})
