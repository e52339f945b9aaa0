import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedConfig } from '../../vitest.shared.ts'
// the dashboard is served from its esbuild bundle: build it before any test loads the pages
export default mergeConfig(sharedConfig, defineConfig({ test: { globalSetup: ['./scripts/vitest_global_setup.mjs'] } }))
