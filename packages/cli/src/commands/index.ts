import type { Command } from '../command.js'
import { agentDisable, agentEnable, agentList, agentRegister } from './agent.js'
import { approvalsApprove, approvalsDeny, approvalsList } from './approvals.js'
import { approvalsWatch } from './approvals_watch.js'
import { auditCheckpoint, auditExport, auditVerify } from './audit.js'
import { auditQuery } from './audit_query.js'
import { authorityStart } from './authority_start.js'
import { authorityMigrate } from './authority_migrate.js'
import { dashboardLogin } from './dashboard_login.js'
import { doctor } from './doctor.js'
import { federationAdd, federationList, federationRemove, federationTest } from './federation.js'
import { grant } from './grant.js'
import { init } from './init.js'
import { keysRotate } from './keys.js'
import { keygen } from './keygen.js'
import { policyCheck } from './policy.js'
import { revoke } from './revoke.js'
import { revocationsList } from './revocations.js'
import { tokenInspect, tokenVerify } from './token.js'

/** Every command, in the order `mandate --help` lists them. */
export const COMMANDS: readonly Command[] = [
  init,
  keygen,
  authorityStart,
  authorityMigrate,
  keysRotate,
  policyCheck,
  agentRegister,
  agentList,
  agentDisable,
  agentEnable,
  federationAdd,
  federationList,
  federationRemove,
  federationTest,
  grant,
  tokenInspect,
  tokenVerify,
  approvalsList,
  approvalsApprove,
  approvalsDeny,
  approvalsWatch,
  revoke,
  revocationsList,
  auditVerify,
  auditCheckpoint,
  auditExport,
  auditQuery,
  dashboardLogin,
  doctor,
]
