// Types of scripts/test-services.mjs (the real Postgres / Redis servers of the integration tests).

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string
  port: number
  dir: string
  start(): Promise<void>
  /** Fast shutdown (disconnects clients, rolls back open transactions). */
  stop(): Promise<void>
  restart(): Promise<void>
  /** Immediate shutdown (like a crash). */
  kill(): Promise<void>
  /** Stop and remove the data directory. */
  destroy(): Promise<void>
  /** Create a fresh database; resolves its URL. */
  database(name?: string): Promise<string>
}

export interface RedisServer {
  url: string
  port: number
  start(): Promise<void>
  stop(): Promise<void>
  restart(): Promise<void>
  kill(): Promise<void>
  /** Send a signal (SIGSTOP, SIGCONT, …) to the running server. */
  signal(sig: NodeJS.Signals): void
}

export function postgresBinDir(): string | undefined
export function hasPostgres(): boolean
export function hasRedis(): boolean
export function requireService(name: 'postgres' | 'redis'): boolean
export function freePort(): Promise<number>
export function startPostgres(options?: { port?: number; maxConnections?: number }): Promise<PostgresServer>
export function startRedis(options?: { port?: number; args?: string[] }): Promise<RedisServer>
