/**
 * The Authority's live web dashboard (plain HTML/CSS/JS, no bundler): agents, tasks and their
 * delegation trees, tool calls, pending approvals with Approve/Deny, revocations, the audit trail
 * with its verification status, and a timeline. Mount it with `installDashboard(app, authority)`.
 */
export { installDashboard } from './routes.js'
export type { DashboardOptions, DashboardHandle } from './routes.js'
export type { DashboardIdentity } from './sessions.js'
export type { DashboardAuthority, AuditVerification, DashboardCall, CallStatus } from './source.js'
export { callViews } from './source.js'
export type * from './api_types.js'
