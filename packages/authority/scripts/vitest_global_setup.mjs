// vitest globalSetup: tests run the Authority from TypeScript sources, which serve the dashboard
// bundle from dist/dashboard-ui; build it first so a test never serves a missing or stale front end.
import { buildDashboard } from './build_dashboard.mjs'

export default async function setup() {
  await buildDashboard()
}
