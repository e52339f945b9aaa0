// The example's stand-in for a real chat model: the scripted model from @mandate/langchain/testing.
export { callTools, ScriptedChatModel, type ScriptStep } from '@mandate/langchain/testing'
