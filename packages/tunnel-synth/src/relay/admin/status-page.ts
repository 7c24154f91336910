/**
 * The status page: server-rendered HTML (a login form, or the tunnels and totals), and one small
 * script that polls `status.json` every 1.5 s and rewrites the numbers with `textContent` only.
 * No build step, no CDN, nothing fetched from elsewhere (the CSP says so).
 */
import type { RelayStatus, TunnelStatus } from './status-data'

/** Content-Security-Policy of every admin page: only this origin's script and JSON. */
export const ADMIN_CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; " +
  "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}
const esc = (v: unknown) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]!)

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.3rem;margin:0 0 1rem}table{border-collapse:collapse;margin:1rem 0}
th,td{padding:.3rem .7rem;border-bottom:1px solid #d0d7de;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.totals td:first-child{color:#57606a}
.on{color:#1a7f37;font-weight:600}.off{color:#cf222e;font-weight:600}.err{color:#cf222e}
.muted{color:#57606a}form{display:flex;gap:.5rem;align-items:center}input{padding:.3rem;font:inherit}`

function page(title: string, body: string, script = false): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body>${body}${script ? '<script src="/admin/status.js" defer></script>' : ''}</body></html>`
}

/**
 * The login form (posted to `/admin/login`; the key travels in the body, never in the URL).
 * @example
 * ```ts
 * res.end(loginPage('That key is not an admin key.'))
 * ```
 */
export function loginPage(message?: string): string {
  return page(
    'Relay status: sign in',
    `<h1>Relay status</h1><p>Enter the relay's admin key (<code>TASKAPP_RELAY_ADMIN_KEY</code>).</p>
${message ? `<p class="err" id="login-error">${esc(message)}</p>` : ''}
<form method="post" action="/admin/login"><label for="key">Admin key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form>`,
  )
}

/** What a browser sees at `/admin` on the main port: where the page really is (no form here). */
export function mainPortPage(message: string): string {
  return page(
    'Relay status: use the admin port',
    `<h1>Relay status</h1><p id="admin-port-only">${esc(message)}</p>`,
  )
}

/** Rows of the totals table: [label, field of {@link RelayStatus.relay}]. */
const TOTALS: ReadonlyArray<[string, string]> = [
  ['Ready', 'ready'],
  ['Leases', 'leases'],
  ['Agents attached', 'agents'],
  ['In flight', 'inflight'],
  ['Requests (total)', 'requests'],
  ['Errors (total)', 'errors'],
  ['Requests (last minute)', 'requests1m'],
  ['Errors (last minute)', 'errors1m'],
  ['Bytes in', 'bytesIn'],
  ['Bytes out', 'bytesOut'],
  ['Memory in use (bytes)', 'memoryInUse'],
  ['Agent reconnects', 'agentReconnects'],
  ['Started', 'startedAt'],
]

const COLUMNS = [
  'Route',
  'Owner',
  'Created',
  'Agent',
  'In flight',
  'Req 1 min',
  'Err 1 min',
  'Req 5 min',
  'Err 5 min',
]

function row(t: TunnelStatus, perLease: number): string {
  const cells = [
    `<td data-f="route">${esc(t.route)}</td>`,
    `<td data-f="owner">${esc(t.owner)}</td>`,
    `<td data-f="createdAt">${esc(t.createdAt)}</td>`,
    `<td data-f="agent" class="${t.agent ? 'on' : 'off'}">${t.agent ? 'attached' : 'none'}</td>`,
    `<td data-f="inflight" class="n">${t.inflight} / ${perLease}</td>`,
    ...(['requests1m', 'errors1m', 'requests5m', 'errors5m'] as const).map(
      (f) => `<td data-f="${f}" class="n">${t[f]}</td>`,
    ),
  ]
  return `<tr data-id="${esc(t.id)}">${cells.join('')}</tr>`
}

/**
 * The status page as it stands now; its script keeps it current.
 * @example
 * ```ts
 * res.end(statusPage(await relayStatus(ctx, observer, owners, true)))
 * ```
 */
export function statusPage(s: RelayStatus): string {
  const totals = TOTALS.map(
    ([label, f]) =>
      `<tr><td>${esc(label)}</td><td class="n" data-t="${f}">${esc((s.relay as unknown as Record<string, unknown>)[f])}</td></tr>`,
  ).join('')
  const head = COLUMNS.map((c, i) => `<th${i >= 4 ? ' class="n"' : ''}>${esc(c)}</th>`).join('')
  const rows = s.tunnels.map((t) => row(t, s.relay.maxInflightPerLease)).join('')
  return page(
    'Relay status',
    `<h1>Relay status</h1>
<form method="post" action="/admin/logout"><span class="muted">Updated <span id="updated">${esc(s.now)}</span> ·
<span id="live">live</span></span><button type="submit">Sign out</button></form>
<table class="totals"><tbody>${totals}</tbody></table>
<h2>Tunnels (<span id="count">${s.tunnels.length}</span>)</h2>
<table id="tunnels" data-per-lease="${s.relay.maxInflightPerLease}"><thead><tr>${head}</tr></thead>
<tbody>${rows}</tbody></table>`,
    true,
  )
}

/** The page's script (served at `/admin/status.js`): poll, then rewrite cells as text. */
export const STATUS_SCRIPT = `'use strict'
;(() => {
  const FIELDS = ['route', 'owner', 'createdAt', 'agent', 'inflight', 'requests1m', 'errors1m', 'requests5m', 'errors5m']
  const NUMERIC = new Set(['inflight', 'requests1m', 'errors1m', 'requests5m', 'errors5m'])
  const body = document.querySelector('#tunnels tbody')
  const live = document.getElementById('live')
  const cell = (tr, f) => {
    let td = tr.querySelector('[data-f="' + f + '"]')
    if (!td) {
      td = document.createElement('td')
      td.dataset.f = f
      if (NUMERIC.has(f)) td.className = 'n'
      tr.appendChild(td)
    }
    return td
  }
  const render = (s) => {
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = String(s.relay[el.dataset.t])
    document.getElementById('updated').textContent = s.now
    document.getElementById('count').textContent = String(s.tunnels.length)
    const rows = new Map([...body.children].map((tr) => [tr.dataset.id, tr]))
    const order = []
    for (const t of s.tunnels) {
      let tr = rows.get(t.id)
      if (!tr) {
        tr = document.createElement('tr')
        tr.dataset.id = t.id
      }
      rows.delete(t.id)
      for (const f of FIELDS) {
        const td = cell(tr, f)
        if (f === 'agent') {
          td.textContent = t.agent ? 'attached' : 'none'
          td.className = t.agent ? 'on' : 'off'
        } else if (f === 'inflight') td.textContent = t.inflight + ' / ' + s.relay.maxInflightPerLease
        else td.textContent = String(t[f])
      }
      order.push(tr)
    }
    for (const tr of rows.values()) tr.remove()
    order.forEach((tr) => body.appendChild(tr))
  }
  const poll = async () => {
    if (document.visibilityState === 'visible') {
      try {
        const res = await fetch('/admin/status.json', { credentials: 'same-origin', cache: 'no-store' })
        if (res.status === 401) return void location.reload()
        if (!res.ok) throw new Error('HTTP ' + res.status)
        render(await res.json())
        live.textContent = 'live'
        live.className = ''
      } catch (err) {
        live.textContent = 'disconnected (' + err.message + '), retrying'
        live.className = 'err'
      }
    }
    setTimeout(poll, 1500)
  }
  setTimeout(poll, 1500)
})()
`
