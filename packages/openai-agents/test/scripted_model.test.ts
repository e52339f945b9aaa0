import { Agent, run, Runner, setTracingDisabled, tool } from '@openai/agents'
import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { callTools, reply, ScriptedModel, ScriptedModelProvider } from '../src/testing/index.js'

beforeAll(() => setTracingDisabled(true))

function echoTool(seen: string[]) {
  return tool({
    name: 'echo',
    description: 'echo',
    parameters: z.object({ x: z.string() }),
    needsApproval: async (_rc, input) => input.x === 'needs-approval',
    execute: async ({ x }) => {
      seen.push(x)
      return `echo ${x}`
    },
  })
}

describe('ScriptedModel', () => {
  it('drives Runner.run through parallel tool calls, an approval interruption and a resume', async () => {
    const seen: string[] = []
    const model = new ScriptedModel([callTools({ name: 'echo', arguments: { x: 'a' } }, { name: 'echo', arguments: { x: 'needs-approval' } }), reply('done')])
    const agent = new Agent({ name: 'a', tools: [echoTool(seen)], model })
    const first = await run(agent, 'hi')
    expect(seen).toEqual(['a'])
    expect(first.interruptions.map((i) => i.rawItem)).toMatchObject([{ type: 'function_call', name: 'echo', callId: 'call_1_2' }])
    first.state.approve(first.interruptions[0]!)
    const done = await run(agent, first.state)
    expect(done.finalOutput).toBe('done')
    expect(seen).toEqual(['a', 'needs-approval'])
    // what the model read on its second call: both tool results, recorded as sent
    expect(model.requests).toHaveLength(2)
    expect(model.requests[0]?.tools).toEqual(['echo'])
    expect(JSON.stringify(model.requests[1]?.input)).toContain('echo needs-approval')
    expect(model.remaining).toBe(0)
  })

  it('answers from the request with a step function, and streams', async () => {
    const model = new ScriptedModel([callTools({ name: 'echo', arguments: '{"x":"z"}', callId: 'c1' }), (req) => reply(JSON.stringify(req.input).includes('echo z') ? 'saw z' : 'missed')])
    const agent = new Agent({ name: 'a', tools: [echoTool([])], model })
    const stream = await run(agent, 'hi', { stream: true })
    let text = ''
    for await (const event of stream.toTextStream()) text += event
    await stream.completed
    expect(stream.finalOutput).toBe('saw z')
    expect(text).toBe('saw z')
  })

  it('fails a run that goes on longer than scripted, or repeats the last step when asked', async () => {
    const agent = new Agent({ name: 'a', tools: [echoTool([])], model: new ScriptedModel([callTools({ name: 'echo', arguments: { x: 'a' } })]) })
    await expect(run(agent, 'hi')).rejects.toThrow(/no scripted step left/)
    const seen: string[] = []
    const looping = new Agent({ name: 'b', tools: [echoTool(seen)], model: new ScriptedModel([callTools({ name: 'echo', arguments: { x: 'again' } })], { whenExhausted: 'repeat' }) })
    await expect(run(looping, 'hi', { maxTurns: 3 })).rejects.toThrow(/max turns/i)
    expect(seen.length).toBe(3)
    expect(() => new ScriptedModel([], { whenExhausted: 'repeat' })).toThrow(TypeError)
  })

  it('is served by name from a ScriptedModelProvider, and an unknown name never falls back to a real provider', async () => {
    const runner = new Runner({ modelProvider: new ScriptedModelProvider({ 'gpt-test': new ScriptedModel([reply('hello')]) }) })
    expect((await runner.run(new Agent({ name: 'a', model: 'gpt-test' }), 'hi')).finalOutput).toBe('hello')
    await expect(runner.run(new Agent({ name: 'b', model: 'gpt-other' }), 'hi')).rejects.toThrow(/no scripted model named/)
  })
})
