/**
 * The job pages as server-rendered HTML: the list of jobs (`/jobs`) and one job (`/jobs/{id}`),
 * whose live sections are rendered by the same functions the page's script re-renders them with.
 * Every piece of user content (prompts, ids, messages) goes through `escapeHtml`.
 */
import type { JobRecord } from '../job-record'
import { applyEvent, escapeHtml, initialState, renderSections } from './job-page.js'
import type { PageState } from './job-page.js'

/** Where the backend serves the page's script. */
export const SCRIPT_PATH = '/jobs/job-page.js'

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2937;background:#fafafa}
header,main{max-width:980px;margin:0 auto;padding:12px 20px}
header{border-bottom:1px solid #e5e7eb;background:#fff;max-width:none}
h1{font-size:18px;margin:4px 0}h2{font-size:15px;margin:18px 0 6px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 14px;margin:12px 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #f1f1f1}
tr.best{background:#ecfdf5}.muted{color:#6b7280}code{font-size:12px}
.status{padding:1px 8px;border-radius:10px;background:#e5e7eb}.status-succeeded{background:#bbf7d0}
.status-failed{background:#fecaca}.status-running{background:#bfdbfe}.status-cancelled{background:#fde68a}
.chart{width:100%;max-width:720px;height:auto}.chart text{font-size:11px;fill:#6b7280}
.legend span{margin-right:14px}.diff{white-space:pre-wrap;background:#f9fafb;padding:8px;border-radius:4px}
ins{background:#bbf7d0;text-decoration:none}del{background:#fecaca}
.error{color:#b91c1c}`

/** The page around `body`. */
function layout(title: string, body: string, script = false): string {
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>`,
    `<header><a href="/jobs">taskapp local backend · jobs</a></header>`,
    body,
    script ? `<script type="module" src="${SCRIPT_PATH}"></script>` : '',
    '</body></html>',
  ].join('')
}

/** The page state of `job` now: its events folded, its status from the record. */
export function pageState(job: JobRecord): PageState {
  const state = initialState(job.id)
  for (const event of job.events) applyEvent(state, event)
  state.status = job.status
  state.budget ??= job.progress.budget ?? null
  return state
}

/** JSON that is safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

/** `/jobs/{id}`: the job's page, live sections rendered now; the script follows from `state.seq`. */
export function jobPageHtml(job: JobRecord): string {
  const state = pageState(job)
  const sections = renderSections(state)
  const section = (id: string, title: string, extra = ''): string =>
    `<section><h2>${title}</h2>${extra}<div id="${id}">${sections[id] ?? ''}</div></section>`
  const legend =
    '<p class="legend muted"><span>● baseline</span><span style="color:#d97706">○ candidate, minibatch</span>' +
    '<span style="color:#2563eb">● candidate, validation</span><span style="color:#16a34a">— best so far</span>' +
    '<span>- - baseline score</span></p>'
  const id = escapeHtml(job.id)
  const body = [
    `<main id="job" data-job-id="${id}" data-events-url="/jobs/${id}/events" data-seq="${state.seq}" data-status="${escapeHtml(state.status)}" data-stream="idle">`,
    `<h1>Job <code>${id}</code> <span class="muted">${escapeHtml(job.request.kind)}</span></h1>`,
    `<div id="job-summary">${sections['job-summary'] ?? ''}</div>`,
    section('job-chart', 'Score against rollouts used', legend),
    section('job-candidates', 'Candidates'),
    section('job-diff', 'Best prompt against the baseline'),
    '</main>',
    `<script type="application/json" id="job-state">${scriptJson(state)}</script>`,
  ].join('')
  return layout(`Job ${job.id} · taskapp`, body, true)
}

function score(value: number | undefined): string {
  return value === undefined ? '–' : value.toFixed(3)
}

/** `/jobs`: every job the backend keeps, newest first. */
export function jobListHtml(jobs: Iterable<JobRecord>): string {
  const rows = [...jobs].reverse().map((job) => {
    const id = escapeHtml(job.id)
    const p = job.progress
    return (
      `<tr><td><a href="/jobs/${id}"><code>${id}</code></a></td><td><span class="status status-${escapeHtml(job.status)}">` +
      `${escapeHtml(job.status)}</span></td><td>${escapeHtml(job.request.kind)}</td><td>${job.createdAt.toISOString()}</td>` +
      `<td>${score(p.baseline)}</td><td>${score(p.best?.score)}</td><td>${p.rolloutsUsed}${p.budget === undefined ? '' : ` / ${p.budget}`}</td></tr>`
    )
  })
  const table =
    rows.length === 0
      ? '<p class="muted">No job yet. Submit one (taskapp optimize, runInProcessJob) and reload.</p>'
      : '<table><thead><tr><th>job</th><th>status</th><th>kind</th><th>created</th><th>baseline</th><th>best</th>' +
        `<th>rollouts</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  return layout('Jobs · taskapp', `<main><h1>Jobs</h1><section>${table}</section></main>`)
}

/** An error page: the status, the stable code and what to do. */
export function errorPageHtml(status: number, code: string, message: string): string {
  const body =
    `<main><h1>${status}</h1><p class="error" data-code="${escapeHtml(code)}"><code>${escapeHtml(code)}</code></p>` +
    `<p>${escapeHtml(message)}</p></main>`
  return layout(`${status} · taskapp`, body)
}
