/**
 * Checking a connection out of a pg pool without an unhandled 'error'. pg-pool removes its own
 * error listener from a client as it hands it out, and `await pool.connect()` resumes a microtask
 * later: an error emitted in between (the server ending the session right as it was set up, e.g.
 * `pg_terminate_backend`, a FATAL in the same packet as ReadyForQuery) has no listener, and Node
 * ends the process. A listener attached in the pool's synchronous 'acquire' event closes that gap;
 * an error it catches before the caller's listener is attached is passed on to that listener.
 */
import type pg from 'pg'

const hooked = new WeakSet<pg.Pool>()
const watched = new WeakSet<pg.PoolClient>()
/** The first error each client emitted (kept until the client is gone: a broken connection stays broken). */
const failed = new WeakMap<pg.PoolClient, Error>()

function watch(pool: pg.Pool): void {
  if (hooked.has(pool)) return
  hooked.add(pool)
  pool.on('acquire', (client: pg.PoolClient) => {
    if (watched.has(client)) return
    watched.add(client)
    client.on('error', (err: Error) => {
      if (!failed.has(client)) failed.set(client, err)
    })
  })
}

/**
 * `pool.connect()`, with `onError` attached to the client for any error from the moment the pool
 * handed it out, including one emitted before this resolved (then `onError` runs right away).
 */
export async function connectClient(pool: pg.Pool, onError: (err: Error) => void): Promise<pg.PoolClient> {
  watch(pool)
  const client = await pool.connect()
  client.on('error', onError)
  const earlier = failed.get(client)
  if (earlier) onError(earlier)
  return client
}
