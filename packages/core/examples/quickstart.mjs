// Quickstart: grant a task mandate, delegate it, mint a call credential, and verify the call at a
// guard. Run after `pnpm build`:  node examples/quickstart.mjs
// (test/quickstart.test.ts imports and runs this same file against the TypeScript sources.)
import {
  buildRootMandate, createGuard, createLocalKeySet, createProof, Ed25519Key, MandateError, narrowMandate, randomId,
  signMandate, verifyMandate,
} from '@mandate/core'

export async function quickstart() {
  const issuer = 'https://authority.example'
  const tools = 'https://tools.example/mcp'
  const now = Math.floor(Date.now() / 1000)

  // 1. Keys: the Authority signs mandates; each agent has its own identity (did:key).
  const authority = Ed25519Key.generate()
  const planner = Ed25519Key.generate()
  const worker = Ed25519Key.generate()
  const keys = createLocalKeySet({ keys: [authority.publicJwk] })

  // 2. Grant: a root task mandate for the planner (what the Authority does on a grant).
  const rootClaims = buildRootMandate(
    {
      subject: 'alice@example.com',
      agent: { id: planner.did, jkt: planner.jkt },
      purpose: 'refund duplicate invoices',
      audiences: [tools],
      scopes: ['billing'],
      tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 100 } } }],
      expiresIn: 900,
      maxDepth: 2,
    },
    { issuer, now, jti: randomId(), txn: randomId() },
  )
  const rootToken = signMandate(rootClaims, authority)

  // 3. Delegate: the planner hands a narrower mandate to the worker (bound to the worker's key).
  const root = await verifyMandate(rootToken, { issuer, keys })
  const childClaims = narrowMandate(
    root.claims,
    { kind: 'delegation', actor: { id: worker.did, jkt: worker.jkt }, tools: [{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'max', value: 50 } } }] },
    { issuer, now, jti: randomId(), parentToken: rootToken, caller: { id: planner.did, jkt: planner.jkt } },
  )
  const childToken = signMandate(childClaims, authority)

  // 4. Call: a single-use credential for exactly this tool and these arguments, plus a fresh proof.
  const args = { invoice: 'inv_42', amount: 20 }
  const child = await verifyMandate(childToken, { issuer, keys })
  const callToken = signMandate(
    narrowMandate(child.claims, { kind: 'call', audience: tools, tool: 'billing.refund', arguments: args }, { issuer, now, jti: randomId(), parentToken: childToken, caller: { id: worker.did, jkt: worker.jkt } }),
    authority,
  )
  const proof = createProof(worker, { accessToken: callToken, audience: tools, tool: 'billing.refund', arguments: args })

  // 5. Guard: the tool side verifies offline against the Authority's JWKS.
  const guard = createGuard({ issuer, jwks: { keys: [authority.publicJwk] }, audience: tools })
  const call = await guard.verifyToolCall({ mandate: callToken, proof, tool: 'billing.refund', arguments: args })
  console.log(`${call.actor} may call ${call.tool} for ${call.subject} (task ${call.task.purpose}); chain: ${call.actorChain.length} actors`)

  // 6. Refusals are typed: replaying the call, or widening the mandate, fails with a stable code.
  const refusals = []
  try {
    await guard.verifyToolCall({ mandate: callToken, proof, tool: 'billing.refund', arguments: args })
  } catch (err) {
    if (!MandateError.is(err)) throw err
    refusals.push(err.code) // PROOF_REPLAYED (HTTP 401, invalid_dpop_proof)
  }
  try {
    narrowMandate(child.claims, { kind: 'call', audience: tools, tool: 'billing.refund', arguments: { invoice: 'inv_42', amount: 500 } }, { issuer, now, jti: randomId(), parentToken: childToken, caller: { id: worker.did, jkt: worker.jkt } })
  } catch (err) {
    if (!MandateError.is(err)) throw err
    refusals.push(err.code) // NARROWING_CONSTRAINT (HTTP 400, invalid_grant)
  }
  console.log(`refused: ${refusals.join(', ')}`)
  return { call, refusals }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await quickstart()
