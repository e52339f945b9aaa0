/**
 * @mandate/ai-sdk/testing — a scripted, deterministic tool-calling model for testing AI SDK agents
 * guarded by Mandate (built on the SDK's own `MockLanguageModelV4` from `ai/test`).
 * @packageDocumentation
 */
export { ScriptedLanguageModel, callTools } from './scripted_model.js'
export type { LanguageModelV4Prompt, ScriptedModelOptions, ScriptedReply, ScriptedStep, ScriptedToolCall } from './scripted_model.js'
