/**
 * The dashboard's JSON API types (docs/authority-api.md, "Dashboard API"). Shared by the server
 * (routes.ts) and the browser front end, which imports them type-only so its bundle carries no
 * server code. Times are ISO 8601 strings in UTC. Nothing here ever holds a token, proof or secret.
 */

/** A principal as the dashboard names it: its did, and its registered name and role when known. */
export interface Actor {
  /** did:key of the principal. */
  did: string
  /** Registered name (AgentRecord.name), absent for a did the registry does not know. */
  name?: string
  /** Registered role (`agent`, `admin`, `approver`, `resource`...). */
  role?: string
}

/** One page of a list endpoint. */
export interface Page<T> {
  /** The items, newest first unless the endpoint says otherwise. */
  items: T[]
  /** Opaque cursor for the next page (`?cursor=`); absent on the last page. */
  next?: string
  /** Total number of matching items, only where it is cheap to know. */
  total?: number
}

/** Paging parameters every list endpoint takes. */
export interface PageQuery {
  /** 1..200, default 50. */
  limit?: number
  /** The `next` of the previous page. */
  cursor?: string
}

/** Error body of every refusal (the OAuth error shape the Authority uses everywhere). */
export interface ApiError {
  error: string
  error_description: string
  /** Stable Mandate error code (e.g. `INVALID_REQUEST`, `ACCESS_DENIED`). */
  mandate_code: string
}

/** Task status: `revoked` (the task, or its root mandate, revoked), `expired` (every mandate past its expiry), else `active`. */
export type TaskStatus = 'active' | 'revoked' | 'expired'

/** The external identity of a task's subject, when the grant carried one. */
export interface SubjectIdentity {
  /** Identity provider (issuer URL). */
  issuer: string
  /** Subject at that provider. */
  sub: string
  name?: string
  email?: string
}

/** One task (txn): a root grant and everything derived from it. `GET /api/tasks`. */
export interface TaskSummary {
  /** Task id (txn claim). */
  txn: string
  /** Purpose given at the grant. */
  purpose?: string
  /** The subject (user) on whose behalf the task runs. */
  subject: string
  subjectIdentity?: SubjectIdentity
  /** The agent that received the root mandate. */
  rootAgent: Actor
  /** When the task's first record was written. */
  createdAt: string
  /** When the task's latest record was written. */
  lastActivityAt: string
  status: TaskStatus
  /** Call counts cover the task's newest 10 000 call records (a larger task is counted from those). */
  counts: {
    /** Mandates issued (root and delegations, not call credentials). */
    mandates: number
    /** Call credentials issued plus calls refused by the Authority. */
    calls: number
    /** Calls a guard reported verified. */
    verified: number
    /** Calls refused by a guard or by the Authority. */
    refused: number
    /** Call credentials issued that no guard reported. */
    notPresented: number
    /** Approvals of this task still pending. */
    pendingApprovals: number
  }
}

/** State of one node of a task's delegation tree. */
export type TreeNodeState =
  | 'issued'
  | 'verified'
  | 'refused'
  | 'not_presented'
  | 'pending_approval'
  | 'approved'
  | 'denied'
  | 'revoked'
  | 'expired'

/** One mandate or call of a task's delegation tree. */
export interface TreeNode {
  /** jti of the mandate or credential; the approval id for a call waiting for (or denied) approval; `seq:<n>` for a call the Authority refused. */
  id: string
  kind: 'mandate' | 'call'
  /**
   * A holder-signed offline hop (a delegation, audience or call narrowing the Authority never
   * minted), as reported by the guard that verified the chain. Absent on Authority-minted nodes.
   */
  offline?: { kind: 'delegation' | 'audience' | 'call'; reportedBy?: Actor }
  /** `audience`: an audience credential (cached call mode: one audience, reused with a fresh proof per call). */
  credential?: 'audience'
  /** The principal the node was issued to (the one who asked, for a refused or pending call). */
  holder: Actor
  /** Full actor chain, first delegate first. */
  actorChain: Actor[]
  audiences: string[]
  /** Tool of a call. */
  tool?: string
  /** Digest of a call's arguments. */
  argumentsDigest?: string
  state: TreeNodeState
  /** The guard that verified/refused it, or the approver that decided it. */
  stateBy?: Actor
  /** The approval the call asked for or consumed. */
  approval?: { id: string; status: string; decidedBy?: Actor; reason?: string }
  /** Refusal code, for a refused call. */
  code?: string
  issuedAt: string
  expiresAt: string
  children: TreeNode[]
}

/** `GET /api/tasks/:txn`. */
export interface TaskDetail {
  task: TaskSummary
  /** Root mandates of the task, each with its descendants. */
  tree: TreeNode[]
  /** The newest audit records of the task (page on with `/api/audit?task=`). */
  audit: Page<AuditView>
}

/** Agent status in the registry. */
export type AgentStatus = 'enabled' | 'disabled' | 'revoked'

/** A registered principal. `GET /api/agents`. */
export interface AgentView {
  did: string
  name: string
  role: string
  owner?: string
  status: AgentStatus
  createdAt: string
  /** Since when it is disabled or revoked. */
  since?: string
  /** Why it was disabled or revoked. */
  reason?: string
  /** The workload identity the key is bound to (an agent admitted by a federation rule). */
  binding?: { iss: string; sub: string; rule: string; claims?: Record<string, string> }
  /** When its registration ends (ISO 8601); after it the principal can do nothing. */
  expiresAt?: string
}

/** Approval status. */
export type ApprovalStatusView = 'pending' | 'approved' | 'denied' | 'expired'

/** A human approval of a call. `GET /api/approvals`, `GET /api/approvals/:id`. */
export interface ApprovalView {
  id: string
  status: ApprovalStatusView
  tool: string
  audience: string
  argumentsDigest: string
  /** The call's arguments, when the Authority stores them: in full, signed tokens replaced by a marker. */
  arguments?: unknown
  /** JSON pointers of the argument values replaced because they are signed tokens, when any. */
  argumentsHidden?: string[]
  /** JSON pointers of members whose name sounds like a secret (shown in full: approving approves them), when any. */
  argumentsSensitiveNames?: string[]
  /** Why policy asked for approval. */
  reason: string
  requestedBy: Actor
  /** Full actor chain of the request, first delegate first. */
  actorChain: Actor[]
  subject: string
  txn: string
  createdAt: string
  expiresAt: string
  decidedBy?: Actor
  decisionReason?: string
  /** Deep link path, e.g. `/dashboard/approvals/<id>`. */
  link: string
  /** A pending approval whose task, parent mandate or an agent of its chain has been revoked: it can only be denied. */
  revoked?: true
}

/** What became of a call. */
export type CallOutcome = 'verified' | 'refused' | 'not_presented' | 'pending_approval'

/** One call (credential or attempt). `GET /api/calls`. */
export interface CallView {
  /** jti of the credential; `seq:<n>` for a call the Authority refused (no credential); `approval:<id>` for a call waiting for (or refused by) an approval. */
  id: string
  txn: string
  tool: string
  audience: string
  /** The agent that made (or asked for) the call. */
  agent: Actor
  actorChain: Actor[]
  outcome: CallOutcome
  /** The guard that verified or refused it, or the approver that denied it (absent when the Authority refused it). */
  outcomeBy?: Actor
  /** Refusal or error code. */
  code?: string
  issuedAt: string
  reportedAt?: string
}

/** One audit record, summarised. `GET /api/audit`. Never holds a token, proof or secret. */
export interface AuditView {
  seq: number
  at: string
  type: string
  /** `allowed` (grant, exchange, allowed report), `refused` (refusal, refused report), or an approval state (`pending`, `approved`, `denied`, `expired`). */
  decision?: 'allowed' | 'refused' | 'pending' | 'approved' | 'denied' | 'expired'
  txn?: string
  agent?: Actor
  subject?: string
  tool?: string
  code?: string
  /** One-line human description. */
  description: string
}

/** `GET /api/overview`. */
export interface Overview {
  issuer: string
  me: Actor
  roles: string[]
  counts: { tasks: number; agents: number; pendingApprovals: number; calls24h: number; refused24h: number }
  audit: { ok: boolean; head?: number }
}

/** `GET /api/tasks` query. */
export interface TaskQuery extends PageQuery {
  subject?: string
  agent?: string
  status?: TaskStatus
  since?: string
  until?: string
  q?: string
}

/** `GET /api/agents` query. */
export interface AgentQuery extends PageQuery {
  role?: string
  status?: AgentStatus
  q?: string
}

/** `GET /api/approvals` query. */
export interface ApprovalQuery extends PageQuery {
  status?: ApprovalStatusView
  task?: string
  agent?: string
  tool?: string
  since?: string
  until?: string
  q?: string
}

/** `GET /api/calls` query. */
export interface CallQuery extends PageQuery {
  task?: string
  agent?: string
  subject?: string
  tool?: string
  outcome?: CallOutcome
  since?: string
  until?: string
  q?: string
}

/** `GET /api/audit` query. */
export interface AuditViewQuery extends PageQuery {
  task?: string
  agent?: string
  subject?: string
  tool?: string
  /** An audit record type (`grant`, `exchange`, `refusal`, `call.report`, `approval.requested`, ...). */
  type?: string
  decision?: AuditView['decision']
  since?: string
  until?: string
  q?: string
}

/** Body of every POST action: the reason, 1..500 characters, recorded in the action's audit record. */
export interface ActionBody {
  reason: string
}

/** Body of `POST /api/revocations`: exactly one target, and the reason. */
export interface RevocationBody extends ActionBody {
  mandate?: string
  txn?: string
  agent?: string
}

/** Success answer of a POST action. */
export interface ActionResult {
  ok: true
  [key: string]: unknown
}

/** `data` of an `audit` SSE event on `/api/events`. */
export interface AuditEventData {
  seq: number
  type: string
  txn?: string
}
