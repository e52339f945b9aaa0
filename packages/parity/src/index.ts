export { SCENARIOS, type Scenario, type ScenarioId } from './scenarios.js'
export { DRIVERS, type DriverEntry } from './drivers/index.js'
export type { Driver, Session, RunInput, RunResult, Turn, ScriptCall, ToolOutput } from './driver.js'
export { createWorld, type World } from './world.js'
