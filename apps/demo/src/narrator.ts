/**
 * Terminal narration: numbered steps, indented detail lines, and a progress indicator for anything
 * slow (a spinner on a TTY, a single "…" line otherwise so CI logs stay readable).
 */
const COLORS = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code: number) => (s: string) => (COLORS ? `\u001b[${code}m${s}\u001b[0m` : s)
export const c = { bold: paint(1), dim: paint(2), red: paint(31), green: paint(32), yellow: paint(33), blue: paint(34), magenta: paint(35), cyan: paint(36) }

export class Narrator {
  private step = 0
  /** The spinner line being drawn, if any: other lines are written above it, never over it. */
  private spinner: string | undefined
  constructor(
    private readonly out: (s: string) => void = (s) => void process.stdout.write(s),
    private readonly tty: boolean = process.stdout.isTTY === true,
  ) {}

  /** Write whole lines; while a spinner runs (another task's progress), clear it, write, redraw it. */
  private write(s: string): void {
    if (this.spinner === undefined) return this.out(s)
    this.out(`\r\u001b[K${s}${this.spinner}`)
  }

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

  /**
   * Run `work` with a progress indicator labelled `label`: a spinner on a terminal (one at a time;
   * lines printed meanwhile go above it), a plain line otherwise.
   */
  async progress<T>(label: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now()
    const elapsed = () => c.dim(`${((Date.now() - started) / 1000).toFixed(1)}s`)
    if (!this.tty || this.spinner !== undefined) {
      this.write(`   … ${label}\n`)
      const out = await work()
      this.write(`   ${c.dim(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`)}\n`)
      return out
    }
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
    let i = 0
    const draw = () => {
      this.spinner = `   ${c.yellow(frames[i++ % frames.length] as string)} ${label} ${elapsed()}`
      this.out(`\r\u001b[K${this.spinner}`)
    }
    draw()
    const timer = setInterval(draw, 80)
    try {
      return await work()
    } finally {
      clearInterval(timer)
      this.spinner = undefined
      this.out(`\r\u001b[K   ${c.dim('·')} ${label} ${elapsed()}\n`)
    }
  }
}
