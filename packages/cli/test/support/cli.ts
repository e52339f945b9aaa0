import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/**
 * The built binary; with MANDATE_CLI_SOURCE=1 (and NODE_OPTIONS="--conditions=@mandate/source
 * --import=<tsx>") the sources instead, to run the end-to-end tests against a tree that is not built.
 */
export const BIN = process.env.MANDATE_CLI_SOURCE === '1' ? join(PACKAGE_DIR, 'src', 'bin.ts') : join(PACKAGE_DIR, 'dist', 'bin.js')

/** Build the CLI with tsc when dist is missing (the root pipeline builds before testing). */
export async function ensureBuilt(): Promise<void> {
  if (existsSync(BIN)) return
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(PACKAGE_DIR, 'tsconfig.build.json')], (err, stdout) => (err ? reject(new Error(`tsc failed: ${stdout}`)) : resolve()))
  })
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Run the built `mandate` binary. */
export function mandate(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...options.env }, cwd: options.cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, stdout, stderr })
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
    else child.stdin?.end()
  })
}

export function json<T = Record<string, unknown>>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`)
  }
}

/** A long-running `mandate authority start`; resolves once it printed its JSON start-up line. */
/** The JSON line `mandate authority start --json` prints. */
export interface StartInfo {
  url: string
  issuer: string
  dashboard?: string
  adminKeyFile: string
  admin: string
  database: string
  loginUrl?: string
}

export async function startAuthority(args: string[], cwd: string): Promise<{ child: ChildProcess; info: StartInfo; output: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'authority', 'start', '--json', ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const info = await new Promise<StartInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`authority did not start: ${out}`)), 20_000)
    const check = () => {
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) {
        clearTimeout(timer)
        resolve(JSON.parse(line) as StartInfo)
      }
    }
    child.stdout.on('data', check)
    child.once('exit', () => reject(new Error(`authority exited: ${out}`)))
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    child,
    info,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}
