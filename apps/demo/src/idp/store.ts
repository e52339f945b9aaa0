/**
 * The local provider's storage (oidc-provider's adapter interface), in memory. One store belongs
 * to one LocalIdp and outlives the Provider instances it restarts with (key rotation), so sessions,
 * grants and interactions in flight survive a rotation. The demo's provider runs for one process;
 * a real deployment puts this in a database.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider'

interface Entry {
  payload: AdapterPayload
  /** ms since the epoch; Infinity when the model gave no lifetime */
  expiresAt: number
}

/** Models whose artifacts are revoked together with their grant. */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])

/** Bounded: a runaway client cannot grow the demo's memory without limit. */
const MAX_ENTRIES = 10_000

export class MemoryStore {
  private readonly entries = new Map<string, Entry>()
  private readonly index = new Map<string, string>()

  /** The adapter factory for oidc-provider's `adapter` option. */
  readonly adapter = (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`
    return {
      upsert: async (id, payload, expiresIn) => {
        this.sweep()
        if (this.entries.size >= MAX_ENTRIES) throw new Error('identity provider storage is full')
        const expiresAt = Number.isFinite(expiresIn) && expiresIn > 0 ? Date.now() + expiresIn * 1000 : Infinity
        this.entries.set(key(id), { payload: structuredClone(payload), expiresAt })
        if (model === 'Session' && typeof payload.uid === 'string') this.index.set(`uid:${payload.uid}`, id)
        if (typeof payload.userCode === 'string') this.index.set(`userCode:${payload.userCode}`, id)
      },
      find: async (id) => this.live(key(id)),
      findByUid: async (uid) => {
        const id = this.index.get(`uid:${uid}`)
        return id === undefined ? undefined : this.live(key(id))
      },
      findByUserCode: async (code) => {
        const id = this.index.get(`userCode:${code}`)
        return id === undefined ? undefined : this.live(key(id))
      },
      consume: async (id) => {
        const e = this.entries.get(key(id))
        if (e) e.payload.consumed = Math.floor(Date.now() / 1000)
      },
      destroy: async (id) => void this.entries.delete(key(id)),
      revokeByGrantId: async (grantId) => {
        for (const [k, e] of this.entries) if (GRANTABLE.has(k.slice(0, k.indexOf(':'))) && e.payload.grantId === grantId) this.entries.delete(k)
      },
    }
  }

  private live(k: string): AdapterPayload | undefined {
    const e = this.entries.get(k)
    if (!e) return undefined
    if (e.expiresAt <= Date.now()) {
      this.entries.delete(k)
      return undefined
    }
    // a copy: oidc-provider mutates what it finds before saving it back
    return structuredClone(e.payload)
  }

  private sweep(): void {
    const now = Date.now()
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k)
  }
}
