import { generateText, stepCountIs, streamText, tool } from 'ai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'

const echo = { echo: tool({ inputSchema: z.object({ say: z.string() }), execute: async ({ say }) => `echo ${say}` }) }

describe('ScriptedLanguageModel (@mandate/ai-sdk/testing)', () => {
  it('drives a generateText tool loop and records what the model read', async () => {
    const model = new ScriptedLanguageModel([
      callTools(['echo', { say: 'hi' }]),
      (prompt) => ({ text: `saw ${JSON.stringify(prompt.at(-1)?.content)}` }),
    ])
    const result = await generateText({ model, tools: echo, prompt: 'go', stopWhen: stepCountIs(3) })
    expect(result.text).toContain('echo hi')
    expect(model.prompts).toHaveLength(2)
    expect(model.seen()).toContain('echo hi')
    expect(model.remaining).toBe(0)
  })

  it('streams the same script', async () => {
    const model = new ScriptedLanguageModel([callTools(['echo', { say: 'yo' }]), { text: 'streamed' }])
    const result = streamText({ model, tools: echo, prompt: 'go', stopWhen: stepCountIs(3) })
    expect(await result.text).toBe('streamed')
    expect((await result.steps)[0]!.toolResults.map((r) => r.output)).toEqual(['echo yo'])
  })

  it('fails loudly when the run outlasts the script (or stops, if asked)', async () => {
    await expect(generateText({ model: new ScriptedLanguageModel([]), prompt: 'go' })).rejects.toThrow(/no step 1/)
    const stop = await generateText({ model: new ScriptedLanguageModel([], { whenExhausted: 'stop' }), prompt: 'go' })
    expect(stop.text).toBe('')
  })
})
