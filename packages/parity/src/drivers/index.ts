// Every adapter driver, with the scenarios it is known not to support (and why).
import type { Driver } from '../driver.js'
import type { ScenarioId } from '../scenarios.js'
import { aiSdkDriver, aiSdkMcpDriver } from './ai_sdk.js'
import { langchainAgentDriver } from './langchain_agent.js'
import { langchainMcpDriver } from './langchain_mcp.js'
import { langgraphToolNodeDriver } from './langgraph_toolnode.js'
import { mcpClientDriver } from './mcp_client.js'
import { multiServerMcpDriver } from './multi_server_mcp.js'
import { openAiAgentsDriver, openAiAgentsMcpDriver } from './openai_agents.js'

export interface DriverEntry {
  driver: Driver
  /** Known gaps: the scenario runs as `it.fails` with this reason in its name. */
  gaps?: Partial<Record<ScenarioId, string>>
}

export const DRIVERS: readonly DriverEntry[] = [
  { driver: langchainAgentDriver },
  { driver: langgraphToolNodeDriver },
  { driver: mcpClientDriver },
  { driver: aiSdkDriver },
  { driver: aiSdkMcpDriver },
  { driver: langchainMcpDriver },
  { driver: multiServerMcpDriver },
  { driver: openAiAgentsDriver },
  { driver: openAiAgentsMcpDriver },
]

/**
 * Adapters the issue names whose drivers are not written yet (the adapter was not usable when the
 * suite was written): listed as skipped tests with the reason, so the gap shows in every run.
 */
export const PENDING_DRIVERS: readonly { name: string; reason: string }[] = [
]
