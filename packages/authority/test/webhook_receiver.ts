/**
 * A real webhook receiver on 127.0.0.1 for the notification tests: it verifies every request with
 * the official Standard Webhooks library (an implementation independent of the Authority's signer)
 * and can be switched to answer 500, to hang, or to be down (connection refused) and come back on
 * the same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export type ReceiverMode = 'ok' | 'error' | 'hang'

export interface Received {
  id: string
  timestamp: string
  signature: string
  body: string
  json: Record<string, unknown>
  /** Verified with every secret given to the receiver. */
  verified: boolean
}

export class WebhookReceiver {
  mode: ReceiverMode = 'ok'
  /** Answer 500 to the requests this picks (in mode ok). */
  failWhen: ((r: Received) => boolean) | undefined
  /** Every request that reached the handler, verified or not, in arrival order. */
  readonly requests: Received[] = []
  /** Requests answered 2xx (what the Authority may count as delivered), in order. */
  readonly delivered: Received[] = []
  /** Requests currently left hanging. */
  hanging = 0
  #server: Server | undefined
  #port = 0
  readonly #open = new Set<ServerResponse>()
  readonly #secrets: string[]

  constructor(secrets: string[]) {
    this.#secrets = secrets
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hooks/secret-path`
  }

  /** Listen (on the same port as before, when it ran already). */
  async start(): Promise<this> {
    const server = createServer((req, res) => void this.#handle(req, res))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: '127.0.0.1', port: this.#port }, () => resolve())
    })
    this.#port = (server.address() as AddressInfo).port
    this.#server = server
    return this
  }

  /** Go down: connections are refused until start() again. */
  async stop(): Promise<void> {
    const s = this.#server
    this.#server = undefined
    if (!s) return
    for (const r of this.#open) r.destroy()
    this.#open.clear()
    await new Promise<void>((resolve) => {
      s.close(() => resolve())
      s.closeAllConnections()
    })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) }
    let verified = this.#secrets.length > 0
    for (const s of this.#secrets) {
      try {
        new Webhook(s).verify(body, headers)
      } catch {
        verified = false
      }
    }
    const r: Received = { id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], signature: headers['webhook-signature'], body, json: JSON.parse(body) as Record<string, unknown>, verified }
    this.requests.push(r)
    if (this.mode === 'hang') {
      this.hanging++
      this.#open.add(res)
      res.on('close', () => {
        this.hanging--
        this.#open.delete(res)
      })
      return
    }
    if (this.mode === 'error' || this.failWhen?.(r)) {
      res.writeHead(500).end('no')
      return
    }
    this.delivered.push(r)
    res.writeHead(204).end()
  }

  /** Distinct messages answered 2xx, first delivery of each, in order. */
  unique(): Received[] {
    const seen = new Set<string>()
    return this.delivered.filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true)))
  }
}

/** Wait until `cond` holds (polling), failing after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
