// The scripted model lives with the README example (which users run offline); tests share it.
export { callTools, ScriptedChatModel, type ScriptStep } from '../../examples/scripted_model.js'
