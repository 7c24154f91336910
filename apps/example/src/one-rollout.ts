// One rollout of the example task app, served in this process with no tunnel; the README shows
// this file. From the repo root: node --conditions=@taskapp/source --import tsx apps/example/src/one-rollout.ts
import { InProcessTaskApp, type RolloutResponseOutput } from '@taskapp/sdk'
import { buildConfig } from './task-app.js'

await using app = await InProcessTaskApp.start({
  configFactory: () => buildConfig(),
  tunnel: { mode: 'local' },
  port: 0,
})
const res = await fetch(`${app.url}/rollout`, {
  method: 'POST',
  // app.headers is exactly what a caller needs: here X-API-Key with the key generated for this run
  headers: { ...app.headers, 'content-type': 'application/json' },
  body: JSON.stringify({
    trace_correlation_id: 't1',
    env: { seed: 3, config: { split: 'test' } },
    policy: { policy_name: 'baseline' },
  }),
})
const body = (await res.json()) as RolloutResponseOutput
console.log(JSON.stringify(body.reward_info))
