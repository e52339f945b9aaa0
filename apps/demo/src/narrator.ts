/**
 * Terminal narration: numbered steps, indented detail lines, and a progress indicator for anything
 * slow (a spinner on a TTY, a single "…" line otherwise so CI logs stay readable).
 */
const COLORS = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code: number) => (s: string) => (COLORS ? `\u001b[${code}m${s}\u001b[0m` : s)
export const c = { bold: paint(1), dim: paint(2), red: paint(31), green: paint(32), yellow: paint(33), blue: paint(34), magenta: paint(35), cyan: paint(36) }

export class Narrator {
  private step = 0
  constructor(private readonly write: (s: string) => void = (s) => void process.stdout.write(s)) {}

  title(text: string): void {
    this.write(`\n${c.bold(text)}\n${c.dim('─'.repeat(Math.min(78, text.length)))}\n`)
  }

  /** A numbered story step. */
  say(text: string): void {
    this.step++
    this.write(`\n${c.bold(c.cyan(`${this.step}.`))} ${text}\n`)
  }

  /** A detail line under the current step. */
  detail(text: string): void {
    this.write(`   ${text}\n`)
  }

  ok(text: string): void {
    this.write(`   ${c.green('✔')} ${text}\n`)
  }

  refused(text: string): void {
    this.write(`   ${c.red('✘')} ${text}\n`)
  }

  note(text: string): void {
    this.write(`   ${c.yellow('!')} ${text}\n`)
  }

  /** Run `work` with a progress indicator labelled `label`. */
  async progress<T>(label: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now()
    if (!process.stdout.isTTY) {
      this.write(`   … ${label}\n`)
      const out = await work()
      this.write(`   ${c.dim(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`)}\n`)
      return out
    }
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
    let i = 0
    const timer = setInterval(() => {
      this.write(`\r   ${c.yellow(frames[i++ % frames.length]!)} ${label} ${c.dim(`${((Date.now() - started) / 1000).toFixed(1)}s`)}`)
    }, 80)
    try {
      return await work()
    } finally {
      clearInterval(timer)
      this.write(`\r   ${c.dim('·')} ${label} ${c.dim(`${((Date.now() - started) / 1000).toFixed(1)}s`)}\u001b[K\n`)
    }
  }
}
