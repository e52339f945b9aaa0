// Shared vitest settings: tests resolve workspace packages to their TypeScript sources through the
// `@mandate/source` export condition, so a package's tests never run against a stale build.
import { defineConfig } from 'vitest/config'

export const sharedConfig = defineConfig({
  resolve: { conditions: ['@mandate/source'] },
  ssr: { resolve: { conditions: ['@mandate/source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
