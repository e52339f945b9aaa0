import type { Command } from '../command.js'
import { agentDisable, agentEnable, agentList, agentRegister } from './agent.js'
import { approvalsApprove, approvalsDeny, approvalsList } from './approvals.js'
import { auditCheckpoint, auditExport, auditVerify } from './audit.js'
import { authorityStart } from './authority_start.js'
import { dashboardLogin } from './dashboard_login.js'
import { grant } from './grant.js'
import { keygen } from './keygen.js'
import { policyCheck } from './policy.js'
import { revoke } from './revoke.js'
import { tokenInspect, tokenVerify } from './token.js'

/** Every command, in the order `mandate --help` lists them. */
export const COMMANDS: readonly Command[] = [
  keygen,
  authorityStart,
  policyCheck,
  agentRegister,
  agentList,
  agentDisable,
  agentEnable,
  grant,
  tokenInspect,
  tokenVerify,
  approvalsList,
  approvalsApprove,
  approvalsDeny,
  revoke,
  auditVerify,
  auditCheckpoint,
  auditExport,
  dashboardLogin,
]
