/**
 * The story: Alice signs in at a local OpenID provider → the host app exchanges her ID token for a
 * task mandate → orchestrator → billing sub-agent → tools, every call with its own credential.
 */
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { createGuard, createRevocationStatusClient, decodeMandateUnverified, Ed25519Key, type Guard, type ToolGrant } from '@mandate/core'
import { createMandateFetch, delegateTo, mandateMiddleware, withMandate, type MandateOptions } from '@mandate/langchain'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createAgent } from 'langchain'
import { z } from 'zod'
import { AuthorityLink, type AuditRecordView, type InstallDashboard } from './authority_link.js'
import { ALICE } from './idp/accounts.js'
import { DEMO_RULE_ID, demoFederationRule, personOf } from './idp/federation.js'
import { loginScripted, startLogin, type Credentials, type LoginResult, type LoginTarget } from './idp/login.js'
import { startLocalIdp } from './idp/provider.js'
import { BILLING_AUDIENCE, billingTools } from './billing_tools.js'
import { c, type Narrator } from './narrator.js'
import { narrateToolResults } from './narrate_middleware.js'
import { chooseModel, createChatModel, describeModel, type ModelChoice } from './model.js'
import type { Turn } from './scripted_model.js'
import { startTicketServer } from './ticket_server.js'

export interface StoryOptions {
  narrator: Narrator
  /** Wait for a human to approve (dashboard or CLI) instead of auto-approving. */
  interactive: boolean
  /** Use this running Authority instead of an embedded one. */
  authorityUrl?: string
  /** Admin key for --authority-url (the file `mandate authority start` printed). */
  adminKey?: Ed25519Key
  /** Where the embedded Authority keeps its SQLite file and the demo writes key files. */
  stateDir: string
  /** How long the non-interactive run waits, visibly, before the approver decides (ms). */
  autoApproveDelayMs: number
  /** The chat model behind the agents (default: chooseModel(), i.e. scripted unless a provider key is set). */
  model?: ModelChoice
  /** The dashboard installer (default: the one @mandate/authority exports). */
  installDashboard?: InstallDashboard
  /**
   * How Alice's sign-in at the local OpenID provider is completed: `interactive` prints the URL and
   * waits for a person's browser at the callback; `scripted` (default) posts the provider's real
   * login form without a browser (CI, no terminal); a function drives it otherwise (tests: Chromium).
   */
  login?: 'interactive' | 'scripted' | ((target: LoginTarget & Credentials) => Promise<LoginResult>)
  /** Test hooks: once the dashboard is up (with a fresh one-time login URL for bob), and at the very end. */
  hooks?: { ready?(info: { dashboardLogin: string | undefined }): Promise<void>; finished?(): Promise<void> }
}

export class StoryFailure extends Error {}

// What each agent does. The scripted model follows the plan; a real model gets the same job from
// the system prompt (the demo asks it to try the out-of-mandate export on purpose, to show the refusal).
export const ORCHESTRATOR_PLAN: readonly Turn[] = [
  { calls: [{ name: 'billing_list_invoices', args: { status: 'anomalous' } }] },
  { calls: [{ name: 'delegate_to_billing_agent', args: { invoices: ['INV-1001', 'INV-1003'] } }] },
  { answer: 'Triage done.' },
]
export const ORCHESTRATOR_PROMPT = [
  'You are the orchestrator agent of a billing team, acting for Alice.',
  'First call billing_list_invoices with status "anomalous". Then call delegate_to_billing_agent exactly once with the ids of those invoices.',
  'Then answer in one short sentence. Do not call any other tool.',
].join(' ')
export const billingPlan = (invoices: readonly string[]): readonly Turn[] => [
  { calls: invoices.map((id) => ({ name: 'billing_get_invoice', args: { id } })) },
  { calls: [{ name: 'tickets_open', args: { title: 'Duplicate charge on INV-1001', invoice: 'INV-1001' } }] },
  { calls: [{ name: 'payments_export_customers', args: { format: 'csv' } }] },
  { calls: [{ name: 'billing_refund', args: { invoice: 'INV-1001', amount: 120 } }] },
  { answer: 'INV-1001 refunded after approval, ticket opened; INV-1003 needs a human look.' },
]
export const BILLING_PROMPT = [
  'You are the billing sub-agent. Work through these steps in order, one tool call per step:',
  '1. call billing_get_invoice for each invoice id you were given;',
  '2. call tickets_open once with title "Duplicate charge on INV-1001" and invoice "INV-1001";',
  '3. call payments_export_customers with format "csv" (this is a deliberate check: it is expected to be refused);',
  '4. call billing_refund with invoice "INV-1001" and amount 120 (a human may have to approve it; just wait for the result).',
  'Finally answer with a one-sentence summary. If a tool is refused, do not retry it.',
].join(' ')
export const AFTER_REVOCATION_PLAN: readonly Turn[] = [{ calls: [{ name: 'billing_get_invoice', args: { id: 'INV-1003' } }] }, { answer: 'I can no longer act on this task.' }]
export const AFTER_REVOCATION_PROMPT = 'You are the billing sub-agent. Call billing_get_invoice with id "INV-1003" once, then report the result in one sentence.'

const PURPOSE = 'triage billing anomalies'
const toolName = (name: string) => (name === 'delegate_to_billing_agent' ? name : name.replace('_', '.'))
const expect = (ok: boolean, what: string) => {
  if (!ok) throw new StoryFailure(what)
}

function toolResults(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))
}

export async function runStory(o: StoryOptions): Promise<void> {
  const n = o.narrator
  const cleanup: (() => Promise<void>)[] = []
  try {
    n.title('Mandate demo — per-agent identities and per-call, narrowing credentials')
    const modelChoice = o.model ?? chooseModel()
    n.detail(`agents: LangChain createAgent, driven by ${describeModel(modelChoice)}`)
    // a scripted model does exactly its plan, so every beat is checked; a real model decides for
    // itself, so a beat it skipped is reported rather than failing the run (Mandate's checks still hold)
    const expectOfModel = (ok: boolean, what: string) => {
      if (modelChoice.provider === 'scripted') expect(ok, what)
      else if (!ok) n.detail(c.yellow(`note: ${what} (the model chose differently)`))
    }

    // ---- identities
    n.say('Every principal gets its own Ed25519 key (did:key); no shared API keys anywhere.')
    const admin = o.adminKey ?? Ed25519Key.generate()
    const keys = {
      hostApp: Ed25519Key.generate(),
      orchestrator: Ed25519Key.generate(),
      billingAgent: Ed25519Key.generate(),
      tickets: Ed25519Key.generate(),
      bob: Ed25519Key.generate(),
    }
    const names = new Map<string, string>([
      [admin.did, 'admin'], [keys.hostApp.did, 'host-app'], [keys.orchestrator.did, 'orchestrator'],
      [keys.billingAgent.did, 'billing-agent'], [keys.tickets.did, 'tickets-mcp'], [keys.bob.did, 'bob (approver)'],
    ])
    const who = (did: string) => names.get(did) ?? `${did.slice(0, 14)}…`
    for (const [did, name] of names) if (name !== 'admin') n.detail(`${name.padEnd(15)} ${c.dim(did)}`)

    // ---- Alice's identity provider: a real OpenID provider on 127.0.0.1, not part of Mandate
    const idp = await n.progress('starting the local OpenID provider (oidc-provider) on 127.0.0.1', () => startLocalIdp())
    cleanup.push(() => idp.close())
    n.ok(`OpenID provider ${c.bold(idp.issuer)} ${c.dim(`(client ${idp.clientId}: authorization code + PKCE S256, ID tokens ${idp.idTokenAlg}, key ${idp.currentKid()})`)}`)

    // ---- the Authority
    const link = o.authorityUrl
      ? await n.progress(`connecting to the Authority at ${o.authorityUrl}`, () => AuthorityLink.remote(o.authorityUrl as string))
      : await n.progress('starting the embedded Authority (SQLite) on 127.0.0.1', async () => {
          await mkdir(o.stateDir, { recursive: true, mode: 0o700 })
          // a fresh story every run: the demo's own database from the previous run is replaced
          const db = join(o.stateDir, 'demo.db')
          for (const f of [db, `${db}-wal`, `${db}-shm`]) await rm(f, { force: true })
          return AuthorityLink.embedded(db, admin, o.installDashboard)
        })
    cleanup.push(() => link.close())
    n.ok(`Authority ${c.bold(link.issuer)}${link.embedded ? ` (embedded, SQLite ${join(o.stateDir, 'demo.db')})` : ''}`)
    await n.progress('registering principals with the Authority (admin API, signed by the admin key)', async () => {
      await link.register(admin, { did: keys.hostApp.did, name: 'host-app', role: 'grantor' })
      await link.register(admin, { did: keys.orchestrator.did, name: 'orchestrator', role: 'agent', owner: 'alice' })
      await link.register(admin, { did: keys.billingAgent.did, name: 'billing-agent', role: 'agent', owner: 'alice' })
      await link.register(admin, { did: keys.tickets.did, name: 'tickets-mcp', role: 'resource' })
      await link.register(admin, { did: keys.bob.did, name: 'bob', role: 'approver' })
    })
    const dashboardLogin = () => link.loginUrl({ did: keys.bob.did, name: 'bob' })
    if (link.dashboardUrl) {
      n.detail(`dashboard: ${link.dashboardUrl}  ${c.dim(`(one-time sign-in as bob: ${dashboardLogin() ?? '-'})`)}`)
      // without --interactive the story runs to the end and the Authority (and its dashboard) stops with it
      if (!o.interactive) n.detail(c.dim('(it closes when the story ends; run `npm run demo -- --interactive` to keep it up and approve there yourself)'))
    }

    await o.hooks?.ready?.({ dashboardLogin: dashboardLogin() })

    // ---- guards (tool side): JWKS + revocation status from the Authority
    const revocation = createRevocationStatusClient(`${link.url}/revocation-status`, { issuer: link.issuer, intervalMs: 500 })
    const billingGuard: Guard = createGuard({ issuer: link.issuer, jwks: `${link.url}/jwks`, audience: BILLING_AUDIENCE, revocation, requireCallBinding: true })
    const tickets = await n.progress('starting the support-ticket MCP server (Streamable HTTP, guarded by @mandate/mcp)', () =>
      startTicketServer({ issuer: link.issuer, jwks: `${link.url}/jwks`, revocation, audit: link.clientFor(keys.tickets), onCall: (l) => n.detail(c.dim(`  ↳ ${l}`)) }),
    )
    cleanup.push(() => tickets.close())
    n.ok(`MCP server ${c.bold(tickets.url)}`)

    // ---- federation: the Authority trusts Alice's provider for people the host app brings, within a template
    const taskTools: ToolGrant[] = [
      { type: 'tool_access', tools: ['billing.list_invoices', 'billing.get_invoice'], locations: [BILLING_AUDIENCE] },
      { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING_AUDIENCE], constraints: { amount: { type: 'max', value: 500 } } },
      { type: 'tool_access', tools: ['tickets.open'], locations: [tickets.url] },
    ]
    const rule = demoFederationRule({
      issuer: idp.issuer, clientId: idp.clientId, hostApp: keys.hostApp.did, audiences: [BILLING_AUDIENCE, tickets.url],
      // the template: at most these tools (refunds up to 1000), 15 minutes, two delegations
      tools: [
        { type: 'tool_access', tools: ['billing.list_invoices', 'billing.get_invoice'], locations: [BILLING_AUDIENCE] },
        { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING_AUDIENCE], constraints: { amount: { type: 'max', value: 1000 } } },
        { type: 'tool_access', tools: ['tickets.open'], locations: [tickets.url] },
      ],
    })
    await n.progress(`adding federation rule ${DEMO_RULE_ID} (admin API)`, () => link.putFederationRule(admin, rule))
    if (!link.embedded) cleanup.push(async () => void (await link.removeFederationRule(admin, DEMO_RULE_ID).catch(() => undefined)))
    n.ok(`federation rule ${c.bold(DEMO_RULE_ID)}: ID tokens of ${idp.issuer} (discovery, RS256/ES256) for ${idp.clientId}, email_verified, redeemed by host-app only; task ≤ billing + tickets, refunds ≤ 1000, 15 min, depth ≤ 2`)

    // ---- 1. Alice signs in at her identity provider (the host app's login), then asks
    n.say(`Alice signs in to the host app at her OpenID provider (authorization code flow with PKCE, state and nonce).`)
    const target = { issuer: idp.issuer, clientId: idp.clientId, idTokenAlg: idp.idTokenAlg, username: ALICE.username, password: ALICE.password }
    const login = await signIn(n, o.login ?? 'scripted', target)
    const person = personOf(login.claims)
    n.ok(`signed in: ${c.bold(person.label)} — issuer ${login.claims.iss}, sub ${login.claims.sub} ${c.dim('(ID token signature, issuer, audience and nonce checked by the host app)')}`)
    names.set(`${login.claims.iss}#${login.claims.sub}`, person.short)

    n.say(`Alice asks the orchestrator agent to ${c.bold(`"${PURPOSE}"`)}. The host app (a registered grantor) exchanges her ID token for a task mandate.`)
    const rootMandate = await link.grantFederated(keys.hostApp, {
      assertion: login.idToken,
      nonce: login.nonce,
      agent: keys.orchestrator.did,
      purpose: PURPOSE,
      audiences: [BILLING_AUDIENCE, tickets.url],
      tools: taskTools,
      expiresIn: 900,
      maxDepth: 2,
    })
    const root = decodeMandateUnverified(rootMandate).payload as { txn: string; jti: string; exp: number; sub: string }
    expect(root.sub === `${login.claims.iss}#${login.claims.sub}`, 'the task mandate is not for the signed-in person')
    n.ok(`task ${root.txn}: ${person.short} → orchestrator; billing.list_invoices, billing.get_invoice, billing.refund (amount ≤ 500), tickets.open; 15 min; depth ≤ 2`)
    n.detail(`subject ${c.bold(root.sub)} — Alice at her provider (jwt-bearer grant, rule ${DEMO_RULE_ID}, within its template)`)
    n.detail(c.dim('The mandate is bound to the orchestrator key (cnf.jkt): useless to anyone without that key.'))

    // ---- the billing sub-agent's tools (LangChain) and the MCP client
    const observe = (line: string) => n.detail(c.dim(`  ↳ ${line}`))
    const mcp = new Client({ name: 'billing-agent', version: '1.0.0' })
    const attachToToolCalls = (_url: URL, init: RequestInit | undefined) => typeof init?.body === 'string' && init.body.includes('"method":"tools/call"')
    await mcp.connect(new StreamableHTTPClientTransport(new URL(tickets.url), { fetch: createMandateFetch({ outsideCall: 'passthrough', attach: attachToToolCalls }) }))
    cleanup.push(() => mcp.close())
    const openTicket = tool(
      async (args) => {
        const res = await mcp.callTool({ name: 'tickets.open', arguments: args })
        const text = Array.isArray(res.content) ? res.content.map((p) => (p as { text?: string }).text ?? '').join(' ') : ''
        if (res.isError) throw new Error(text || 'the MCP server refused the call')
        return text
      },
      { name: 'tickets_open', description: 'Open a support ticket (MCP).', schema: z.object({ title: z.string(), invoice: z.string() }) },
    )

    let delegatedMandate = ''
    let subAgentPhase1: BaseMessage[] = []
    const subAgentOptions = (mandate: string): MandateOptions => ({
      client: link.clientFor(keys.billingAgent),
      key: keys.billingAgent,
      mandate,
      audience: (name) => (name === 'tickets_open' ? tickets.url : name.startsWith('billing_') || name.startsWith('payments_') ? BILLING_AUDIENCE : undefined),
      toolName,
      guard: billingGuard,
      remote: ['tickets_open'],
      approval: { mode: 'wait', timeoutMs: o.interactive ? 15 * 60_000 : 60_000 },
    })
    const narrate = narrateToolResults((ok, name, text) => {
      if (ok) n.ok(`${name} → ${text.length > 90 ? `${text.slice(0, 90)}…` : text}`)
      else n.refused(`${name} → ${c.red(text)}`)
      if (!ok && text.includes('NARROWING_TOOL')) n.detail(c.dim('outside the delegated mandate: the Authority refused to issue a credential, so the tool never ran'))
    }, toolName)
    const subAgentTools = () => {
      const b = billingTools(observe, who)
      return [b.getInvoice, b.refund, b.exportCustomers, openTicket]
    }

    // ---- 2. the orchestrator (a createAgent agent) looks, then delegates
    n.say('The orchestrator (a LangChain createAgent agent) lists anomalous invoices, then delegates to a billing sub-agent.')
    const orchestratorTools = billingTools(observe, who)
    const delegateTool = tool(
      async ({ invoices }) => {
        const sub = await delegateTo({
          client: link.clientFor(keys.orchestrator),
          mandate: rootMandate,
          to: keys.billingAgent.did,
          tools: [
            { type: 'tool_access', tools: ['billing.get_invoice'], locations: [BILLING_AUDIENCE] },
            { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING_AUDIENCE], constraints: { amount: { type: 'max', value: 200 } } },
            { type: 'tool_access', tools: ['tickets.open'], locations: [tickets.url] },
          ],
          expiresIn: 600,
          maxDepth: 1, // absolute: the child sits at depth 1, so it cannot delegate further
        })
        delegatedMandate = sub.mandate
        const child = decodeMandateUnverified(sub.mandate).payload as { jti: string }
        n.ok(`delegated mandate ${child.jti.slice(0, 8)}…: ${person.short} → orchestrator → billing-agent`)
        n.detail('narrower: only billing.get_invoice, billing.refund (amount ≤ 200) and tickets.open; 10 min; cannot delegate further')

        n.say('The billing sub-agent works the case. Each tool call exchanges the delegated mandate for its own call credential.')
        const subAgent = createAgent({
          model: await createChatModel(modelChoice, 'billing-agent', billingPlan(invoices)),
          systemPrompt: BILLING_PROMPT,
          tools: subAgentTools(),
          middleware: [narrate, mandateMiddleware(subAgentOptions(sub.mandate))],
        })
        const out = await subAgent.invoke({ messages: [{ role: 'user', content: `Triage these invoices: ${invoices.join(', ')}` }] })
        subAgentPhase1 = out.messages
        return 'billing sub-agent finished: refund done, ticket opened'
      },
      { name: 'delegate_to_billing_agent', description: 'Hand the anomalous invoices to the billing sub-agent.', schema: z.object({ invoices: z.array(z.string()) }) },
    )
    const orchestrator = createAgent({
      model: await createChatModel(modelChoice, 'orchestrator', ORCHESTRATOR_PLAN),
      systemPrompt: ORCHESTRATOR_PROMPT,
      // the orchestrator's own billing call goes through the tool wrapper (withMandate)
      middleware: [narrate],
      tools: [withMandate(orchestratorTools.listInvoices, { client: link.clientFor(keys.orchestrator), key: keys.orchestrator, mandate: rootMandate, audience: BILLING_AUDIENCE, toolName, guard: billingGuard }), delegateTool],
    })

    const approvals = watchApprovals({ link, approver: keys.bob, narrator: n, interactive: o.interactive, delayMs: o.autoApproveDelayMs, dashboardLogin, stateDir: o.stateDir, who })
    cleanup.push(async () => approvals.stop())
    const orchestration = await orchestrator.invoke({ messages: [{ role: 'user', content: `Alice: please ${PURPOSE}` }] })
    const delegated = toolResults(orchestration.messages).find((m) => m.name === 'delegate_to_billing_agent')
    expectOfModel(delegated?.status !== 'error', `the delegation failed: ${String(delegated?.content)}`)
    const listed = toolResults(orchestration.messages).find((m) => m.name === 'billing_list_invoices')
    expectOfModel(listed?.status !== 'error', `the orchestrator could not list invoices: ${String(listed?.content)}`)

    const results = toolResults(subAgentPhase1)
    const byName = (name: string) => results.filter((m) => m.name === name)
    expectOfModel(byName('billing_get_invoice').length === 2 && byName('billing_get_invoice').every((m) => m.status !== 'error'), 'reading invoices failed')
    expectOfModel(byName('tickets_open')[0]?.status !== 'error' && tickets.tickets.length === 1, 'opening the ticket over MCP failed')
    expectOfModel(byName('payments_export_customers')[0]?.status === 'error', 'the out-of-mandate tool was not refused')
    expectOfModel(byName('billing_refund')[0]?.status !== 'error', 'the approved refund did not complete')

    // ---- 3. revoke mid-way
    n.say(`Alice's security team revokes the whole task (txn ${root.txn}) mid-way.`)
    await link.revokeTask(admin, root.txn, "stopped by Alice's security team")
    n.ok('revoked at the Authority: every mandate of the task, and every descendant, is dead')
    const afterRevocation = createAgent({
      model: await createChatModel(modelChoice, 'billing-agent-2', AFTER_REVOCATION_PLAN),
      systemPrompt: AFTER_REVOCATION_PROMPT,
      tools: subAgentTools(),
      middleware: [narrate, mandateMiddleware(subAgentOptions(delegatedMandate))],
    })
    const next = toolResults((await afterRevocation.invoke({ messages: [{ role: 'user', content: 'Look at INV-1003 again' }] })).messages)[0]
    const nextText = typeof next?.content === 'string' ? next.content : ''
    expectOfModel(next?.status === 'error' && nextText.includes('REVOKED'), 'the call after revocation was not refused')
    n.detail(c.dim("the sub-agent's very next call died: no credential is issued under a revoked task, and guards refuse revoked chains"))

    // ---- 4. audit
    n.say('The audit trail: hash-chained, head signed by the Authority. Verifying it end to end…')
    const verification = await link.auditVerify(admin)
    expect(verification.ok === true, `audit verification failed: ${verification.reason ?? '?'}`)
    n.ok(`audit log verified: ${verification.count ?? '?'} records, hash chain intact`)
    const records = await link.auditRecords(admin, root.txn)
    n.detail(`Every tool call of the task, with the full chain ${c.dim(`(${person.short} is ${root.sub}, as signed in at her provider)`)}:`)
    printCalls(n, records, who, person.short)
    n.detail('')
    n.detail(c.bold('Done.') + ' Every call carried its own short-lived, single-use credential; the chain only narrowed; the human decision and the revocation are in the audit log.')
    await o.hooks?.finished?.()
    if (o.interactive && link.dashboardUrl) {
      n.detail(`The dashboard stays up for you to explore: ${link.loginUrl({ did: keys.bob.did, name: 'bob' }) ?? link.dashboardUrl}`)
      await n.progress('press Enter to stop', () => new Promise<void>((resolve) => process.stdin.once('data', () => resolve())))
      process.stdin.pause()
    }
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined)
  }
}

/** Complete Alice's sign-in with the chosen driver, always at the same real provider. */
async function signIn(n: Narrator, how: NonNullable<StoryOptions['login']>, target: LoginTarget & Credentials): Promise<LoginResult> {
  if (typeof how === 'function') return how(target)
  if (how === 'scripted') {
    n.detail(`Scripted sign-in: a scripted user agent signs in as ${target.username} through the provider's own login form (no browser, no shortcut; \`--interactive\` lets you sign in yourself).`)
    return n.progress(`signing in as ${target.username}`, () => loginScripted(target))
  }
  const pending = await startLogin({ ...target, timeoutMs: 15 * 60_000 })
  try {
    n.detail(`Open this URL in your browser and sign in as ${c.bold(target.username)} (password ${c.bold(target.password)}):`)
    n.detail(`  ${pending.authorizationUrl}`)
    return await n.progress(`waiting for the sign-in at the host app's callback ${pending.redirectUri}`, () => pending.result)
  } finally {
    await pending.close()
  }
}

function printCalls(n: Narrator, records: AuditRecordView[], who: (did: string) => string, person: string): void {
  for (const r of records) {
    const f = r.fields
    const actors = Array.isArray(f.actors) ? (f.actors as string[]) : []
    const subject = f.subject === undefined ? undefined : who(String(f.subject))
    const chain = [subject ?? '?', ...actors.map(who)]
    if (r.type === 'exchange' && f.operation === 'call') {
      const approval = typeof f.approval === 'object' && f.approval !== null ? ` ${c.green(`approved by ${who(String((f.approval as { approver?: unknown }).approver))}`)}` : ''
      // issued is not verified: the ✔ belongs to the guard's report of the call, below
      n.detail(`   #${r.seq} ${[...chain, c.bold(String(f.tool))].join(' → ')}  ${c.dim(`credential issued ${String(f.jti).slice(0, 8)}…, args #${String(f.args).slice(0, 8)}…`)}${approval}`)
    } else if (r.type === 'refusal') {
      const refusedChain = actors.length ? chain : [subject ?? person, who(String(f.agent ?? '?'))]
      n.refused(`#${r.seq} ${[...refusedChain, c.bold(String(f.tool ?? 'its next call'))].join(' → ')}  ${c.red(String(f.code))}`)
    } else if (r.type === 'call.report') {
      const line = `#${r.seq} ${c.bold(String(f.tool))} ${f.decision === 'allowed' ? 'verified' : 'refused'} by the guard${f.outcome ? ` (${String(f.outcome)})` : ''}${f.error ? ` ${String(f.error)}` : ''}`
      if (f.decision === 'allowed') n.ok(line)
      else n.refused(line)
    } else if (r.type === 'exchange' && f.operation === 'delegation') {
      n.detail(`   #${r.seq} delegation ${chain.join(' → ')}`)
    } else if (r.type === 'grant') {
      const fed = typeof f.federation === 'object' && f.federation !== null ? (f.federation as Record<string, unknown>) : undefined
      const idp = fed ? `  ${c.dim(`signed in at ${String(fed.iss)} as ${String(fed.sub)}${fed.name ? ` (${String(fed.name)}${fed.email ? ` <${String(fed.email)}>` : ''})` : ''}, rule ${String(fed.rule)}`)}` : ''
      n.detail(`   #${r.seq} grant ${subject ?? '?'} → ${who(String(f.agent))}${idp}`)
    } else if (r.type.startsWith('approval.') || r.type === 'revocation') {
      n.detail(`   #${r.seq} ${r.type}${f.tool ? ` ${String(f.tool)}` : ''}${f.approver ? ` by ${who(String(f.approver))}` : ''}${f.reason ? ` (${String(f.reason)})` : ''}`)
    }
  }
}

/** The human side of approvals: auto-approve as bob (CI), or wait for the dashboard / CLI (interactive). */
function watchApprovals(p: {
  link: AuthorityLink
  approver: Ed25519Key
  narrator: Narrator
  interactive: boolean
  delayMs: number
  dashboardLogin: () => string | undefined
  stateDir: string
  who: (did: string) => string
}): { stop(): void } {
  let stopped = false
  const handled = new Set<string>()
  const loop = async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 150))
      let pending
      try {
        pending = await p.link.pendingApprovals(p.approver)
      } catch {
        continue
      }
      for (const a of pending) {
        if (handled.has(a.id) || stopped) continue
        handled.add(a.id)
        const n = p.narrator
        n.note(`${c.yellow('approval required')}: ${a.tool} ${JSON.stringify(a.arguments ?? {})} requested by ${p.who(a.requested_by)} (policy: refunds need a human)`)
        n.detail(c.dim('The sub-agent now waits for the decision by event (no polling on its side).'))
        if (p.interactive) {
          const keyFile = join(p.stateDir, 'bob-approver.jwk')
          await writeFile(keyFile, JSON.stringify(p.approver.exportPrivateJwk()), { mode: 0o600 }).catch(() => undefined)
          const login = p.dashboardLogin()
          n.detail(`Approve it in the dashboard${login ? ` (one-time sign-in as bob: ${login})` : ''}`)
          n.detail(`or, in another terminal: ${mandateCommand()} approvals approve ${a.id} --url ${p.link.url} --key ${keyFile}`)
          await n.progress('waiting for a human decision', async () => {
            while (!stopped && (await p.link.pendingApprovals(p.approver).catch(() => [])).some((x) => x.id === a.id)) await new Promise((r) => setTimeout(r, 300))
          })
        } else {
          n.detail(`Automatic approval: bob, a separate ${c.bold('approver identity')} (never the agent), approves via the approvals API after a short wait (\`--interactive\` lets you decide).`)
          await n.progress(`bob is looking at the request (${(p.delayMs / 1000).toFixed(1)}s)`, () => new Promise((r) => setTimeout(r, p.delayMs)))
          await p.link.approve(p.approver, a.id, 'duplicate charge confirmed')
          n.ok(`approved by bob (approver); the sub-agent resumes with a credential that names the approval`)
        }
      }
    }
  }
  void loop()
  return {
    stop() {
      stopped = true
    },
  }
}

/** How to run the CLI from here: the repo's own build (`npm run demo` builds it), else an installed `mandate`. */
function mandateCommand(): string {
  // src/ and dist/ are both one level below apps/demo
  const bin = fileURLToPath(new URL('../../../packages/cli/dist/bin.js', import.meta.url))
  return existsSync(bin) ? `node ${bin}` : 'mandate'
}
