import { checkPolicyFile, explainPolicy, issueLocation } from '@mandate/authority'
import { EXIT } from '../cli_error.js'
import { onePositional, type Command } from '../command.js'

export const policyCheck: Command = {
  path: ['policy', 'check'],
  summary: 'Validate a policy file strictly and explain in plain words what each rule matches and does.',
  args: '<file>',
  details:
    'Every problem is listed with the rule (index and id) and the JSON pointer of the offending member,\n' +
    'e.g. `rule 3 (id "ops"), /rules/3/agnet: unknown member "agnet" (did you mean "agent"?)`; the exit code\n' +
    'is then 1 and nothing else is printed on stdout. A valid policy is explained rule by rule, first match\n' +
    'first, with what happens when no rule matches. The format: docs/policy.md (JSON Schema:\n' +
    '@mandate/authority/policy.schema.json). `mandate authority start --policy FILE` applies the same checks.\n\n' +
    'Examples:\n  mandate policy check policy.json\n  mandate policy check policy.json --json',
  options: {},
  async run({ positionals, io }) {
    const file = onePositional(positionals, 'policy file')
    const r = await checkPolicyFile(file)
    if (!r.ok) {
      if (io.json) {
        io.out(JSON.stringify({
          ok: false, code: 'POLICY_INVALID', file,
          errors: r.issues.map((i) => ({ pointer: i.pointer, ...(i.ruleIndex !== undefined ? { rule_index: i.ruleIndex } : {}), ...(i.ruleId !== undefined ? { rule_id: i.ruleId } : {}), message: i.message })),
        }, null, 2))
      }
      for (const i of r.issues) io.err(`${issueLocation(i, file)}: ${i.message}`)
      io.err(`mandate policy check: ${file} is not a valid policy (${r.issues.length} problem${r.issues.length === 1 ? '' : 's'}) [POLICY_INVALID]`)
      return EXIT.REFUSED
    }
    const e = explainPolicy(r.policy)
    if (io.json) {
      io.out(JSON.stringify({ ok: true, file, defaultEffect: e.defaultEffect, rules: e.rules, otherwise: e.otherwise }, null, 2))
      return EXIT.OK
    }
    const n = e.rules.length
    io.out(`${file}: valid policy, ${n} rule${n === 1 ? '' : 's'}, evaluated in order at every grant, delegation and call credential; the first rule that matches decides.`)
    for (const rule of e.rules) {
      io.out('')
      io.out(`rule ${rule.index} "${rule.id}": ${rule.effect}`)
      io.out('  matches when all of these hold:')
      for (const m of rule.matches) io.out(`    - ${m}`)
      io.out(`  then: ${rule.does}`)
      for (const w of rule.warnings) io.out(`  warning: ${w}`)
    }
    io.out('')
    io.out(`when no rule matches: ${e.otherwise}`)
    return EXIT.OK
  },
}
