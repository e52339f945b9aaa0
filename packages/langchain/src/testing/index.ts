/**
 * @mandate/langchain/testing — a scripted, deterministic tool-calling chat model (no network, no API
 * key) for testing `createAgent` / LangGraph agents guarded by Mandate the way this package's own
 * tests and the parity suite do.
 * @packageDocumentation
 */
export { ScriptedChatModel, callTools } from './scripted_model.js'
export type { ScriptStep } from './scripted_model.js'
