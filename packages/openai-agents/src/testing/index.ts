/**
 * Test helpers for agents built with `@mandate/openai-agents`: a deterministic, scripted tool-calling
 * model (the Agents SDK's `Model` / `ModelProvider` interfaces), so an agent's Mandate behaviour can be
 * tested offline, with no OpenAI key.
 *
 * @packageDocumentation
 */
export { callTools, reply, ScriptedModel, ScriptedModelProvider } from './scripted_model.js'
export type { RecordedRequest, ScriptedModelOptions, ScriptedToolCall, ScriptedTurn, ScriptStep } from './scripted_model.js'
