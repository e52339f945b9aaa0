// Audit rows as the dashboard describes them: a record written before its fields were checked (or
// by another writer) may hold bidi controls or other characters a viewer is fooled by; the view
// shows them as escapes, keeping tabs and line feeds (dashboard probe).
import { describe, expect, it } from 'vitest'
import { Actors, auditView } from '../src/dashboard/views.js'
import type { AuditRecord } from '../src/types.js'

const record = (fields: AuditRecord['fields']): AuditRecord => ({ seq: 7, time: Date.UTC(2026, 11, 8), type: 'call.report', fields, prev: '', hash: 'h' })

describe('audit view text', () => {
  it('shows a stored bidi override, C0/C1 controls and isolates as escapes, in the description and the code', () => {
    const v = auditView(record({ tool: '\u202ednufer.gnillib', decision: 'refused', error: 'E\u2066X', agent: 'did:key:zX', txn: 't', subject: 'alice\u0085' }), new Actors([]))
    expect(v.description).not.toMatch(/[\u202a-\u202e\u2066-\u2069\u0085]/)
    expect(v.description).toContain('\\u202e')
    expect(v.code).toBe('E\\u2066X')
  })
})
