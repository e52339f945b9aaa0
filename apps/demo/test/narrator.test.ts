// The narrator's spinner and the lines printed while it spins (an approval prompt waits with a
// spinner while the resumed agent narrates its calls): every line must stay readable on a terminal.
import { describe, expect, it } from 'vitest'
import { Narrator } from '../src/narrator.js'

/** What a terminal shows for `out`: `\r` returns to column 0, `ESC[K` clears to the end of line. */
function screen(out: string): string[] {
  const lines: string[] = []
  let line: string[] = []
  let col = 0
  for (let i = 0; i < out.length; i++) {
    const ch = out[i] as string
    if (out.startsWith('\u001b[K', i)) {
      line = line.slice(0, col)
      i += 2
    } else if (ch === '\r') col = 0
    else if (ch === '\n') {
      lines.push(line.join(''))
      line = []
      col = 0
    } else {
      line[col++] = ch
    }
  }
  if (line.length) lines.push(line.join(''))
  return lines
}

describe('Narrator on a terminal', () => {
  it('lines written while a spinner runs appear whole above it, and the spinner ends as one line', async () => {
    let out = ''
    const n = new Narrator((s) => void (out += s), true)
    await n.progress('waiting for a human decision', async () => {
      await new Promise((r) => setTimeout(r, 200))
      n.ok('approved by bob')
      n.detail('  ↳ billing.refund allowed')
      await new Promise((r) => setTimeout(r, 100))
    })
    n.detail('after')
    const shown = screen(out)
    expect(shown.map((l) => l.replace(/\d+\.\ds$/, 'Ns'))).toEqual([
      '   ✔ approved by bob',
      '     ↳ billing.refund allowed',
      '   · waiting for a human decision Ns',
      '   after',
    ])
  })

  it('a second progress while one spins prints plain lines instead of a second spinner', async () => {
    let out = ''
    const n = new Narrator((s) => void (out += s), true)
    await n.progress('outer', async () => {
      await n.progress('inner', async () => new Promise((r) => setTimeout(r, 50)))
    })
    const shown = screen(out).map((l) => l.replace(/\d+\.\ds/, 'Ns'))
    expect(shown).toEqual(['   … inner', '   done in Ns', '   · outer Ns'])
  })

  it('without a terminal there is no spinner at all', async () => {
    let out = ''
    const n = new Narrator((s) => void (out += s), false)
    await n.progress('work', async () => n.detail('inside'))
    expect(out).not.toMatch(/\r|\u001b/)
    expect(screen(out).map((l) => l.replace(/\d+\.\ds/, 'Ns'))).toEqual(['   … work', '   inside', '   done in Ns'])
  })
})
