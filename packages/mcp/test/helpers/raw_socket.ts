// HTTP/1.1 over a bare TCP socket (node:net): exactly the bytes we write, so a test can send what
// fetch and node:http refuse to (repeated header lines, oversized bodies written without waiting).
import { connect } from 'node:net'

export interface RawResponse {
  status: number
  /** Header lines as received, lower-cased names, in order (repeats kept). */
  headers: [string, string][]
  body: string
  /** True when the connection ended with a reset instead of a response or an orderly close. */
  reset: boolean
  /** Body bytes written before the answer was complete or the connection closed. */
  written: number
}

export interface RawOptions {
  /** Source address of the connection (any 127.0.0.0/8 address is loopback on Linux). */
  localAddress?: string
  /** Write the body one byte every `intervalMs` (a slow client). */
  trickle?: { intervalMs: number }
  /** Resolve only when the server closes the connection, not as soon as a whole response arrived. */
  untilClose?: boolean
  /** Do not add `Connection: close` (the server may keep the connection open for more requests). */
  keepAlive?: boolean
}

/**
 * Send `head` (request line + header lines, no trailing blank line) and `body`, then read the answer
 * until the server closes the connection. `Connection: close` is added so the server ends it.
 */
export function rawHttp(url: string, head: string[], body: string | Buffer = '', options: RawOptions = {}): Promise<RawResponse> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), ...(options.localAddress ? { localAddress: options.localAddress } : {}) })
    const chunks: Buffer[] = []
    let reset = false
    let done = false
    let written = 0
    const finish = () => {
      if (done) return
      done = true
      const text = Buffer.concat(chunks).toString('utf8')
      const end = text.indexOf('\r\n\r\n')
      const lines = (end === -1 ? text : text.slice(0, end)).split('\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
      const headers = lines.slice(1).filter(Boolean).map((l): [string, string] => {
        const i = l.indexOf(':')
        return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()]
      })
      let rest = end === -1 ? '' : text.slice(end + 4)
      if (headers.some(([k, v]) => k === 'transfer-encoding' && /chunked/i.test(v))) rest = dechunk(rest)
      resolve({ status, headers, body: rest, reset: reset && status === 0, written })
    }
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      // a server may keep the connection open despite `Connection: close` (the MCP SDK sets
      // keep-alive): stop once one whole response with a known length has arrived
      const all = Buffer.concat(chunks)
      const end = all.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = all.subarray(0, end).toString('latin1')
      const len = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1]
      const bodyBytes = all.length - end - 4
      if (!options.untilClose && (len !== undefined && bodyBytes >= Number(len)) || (/\r\ntransfer-encoding: *chunked/i.test(head) && all.subarray(end).includes('\r\n0\r\n\r\n'))) {
        finish()
        socket.destroy()
      }
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true
      else if (!done) reject(err)
    })
    socket.on('close', finish)
    socket.on('connect', () => {
      const b = typeof body === 'string' ? Buffer.from(body) : body
      socket.write(`${[...head, ...(options.keepAlive ? [] : ['Connection: close'])].join('\r\n')}\r\n\r\n`)
      if (options.trickle) {
        // one byte per interval, until the server answers or closes
        let i = 0
        const t = setInterval(() => {
          if (i >= b.length || socket.destroyed) return clearInterval(t)
          socket.write(b.subarray(i, ++i))
          written = i
        }, options.trickle.intervalMs)
        socket.on('close', () => clearInterval(t))
      } else if (b.length) {
        socket.write(b)
        written = b.length
      }
    })
  })
}

function dechunk(s: string): string {
  let out = ''
  let rest = s
  for (;;) {
    const i = rest.indexOf('\r\n')
    if (i === -1) return out
    const n = parseInt(rest.slice(0, i), 16)
    if (!Number.isFinite(n) || n === 0) return out
    out += rest.slice(i + 2, i + 2 + n)
    rest = rest.slice(i + 2 + n + 2)
  }
}

/** The header lines of a request to `url` (request line + Host), plus `extra`. */
export function requestHead(method: string, url: string, extra: string[] = []): string[] {
  const u = new URL(url)
  return [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...extra]
}
