import type { Command } from '../command.js'
import { agentList, agentRegister } from './agent.js'
import { approvalsApprove, approvalsDeny, approvalsList } from './approvals.js'
import { auditExport, auditVerify } from './audit.js'
import { authorityStart } from './authority_start.js'
import { dashboardLogin } from './dashboard_login.js'
import { grant } from './grant.js'
import { keygen } from './keygen.js'
import { revoke } from './revoke.js'
import { tokenInspect, tokenVerify } from './token.js'

/** Every command, in the order `mandate --help` lists them. */
export const COMMANDS: readonly Command[] = [
  keygen,
  authorityStart,
  agentRegister,
  agentList,
  grant,
  tokenInspect,
  tokenVerify,
  approvalsList,
  approvalsApprove,
  approvalsDeny,
  revoke,
  auditVerify,
  auditExport,
  dashboardLogin,
]
