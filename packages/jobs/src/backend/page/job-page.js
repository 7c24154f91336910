// @ts-check
/**
 * The job page's one script, served as is by the local backend at `/jobs/job-page.js` (no build
 * step): the page state folded from the job's events, the chart, the candidates table and the
 * prompt diff as HTML strings (the server renders the first view with these same functions), and,
 * in a browser, the live follow-up over the job's event stream with the client's `seq` rules.
 */

const EVENT_PREFIX = /^learning\.policy\.\w+\./
const FINAL = ['succeeded', 'failed', 'cancelled']

/** @param {unknown} v */
function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

/** @param {unknown} v */
function str(v) {
  return typeof v === 'string' ? v : undefined
}

/** @param {unknown} text */
export function escapeHtml(text) {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  )
}

/** @param {string} jobId @returns {import('./job-page').PageState} */
export function initialState(jobId) {
  return {
    jobId,
    seq: 0,
    status: 'queued',
    budget: null,
    rolloutsUsed: 0,
    generation: 0,
    generations: null,
    baseline: null,
    candidates: [],
    best: null,
    end: null,
    ignored: 0,
  }
}

/**
 * Folds one wire event into `state`. As the client's cursor: an event whose `seq` is not above the
 * last one seen is ignored (counted in `state.ignored`), so a replay after a reconnection adds
 * nothing. Returns whether the event was new.
 * @param {import('./job-page').PageState} state
 * @param {any} event
 */
export function applyEvent(state, event) {
  if (typeof event?.seq !== 'number' || event.seq <= state.seq) {
    state.ignored += 1
    return false
  }
  state.seq = event.seq
  const d = typeof event.data === 'object' && event.data !== null ? event.data : {}
  const at = num(d.rollouts_used)
  if (at !== undefined) state.rolloutsUsed = Math.max(state.rolloutsUsed, at)
  const x = at ?? state.rolloutsUsed
  const name = String(event.type).replace(EVENT_PREFIX, '')
  if (name === 'job.started') {
    state.status = 'running'
    state.budget = num(d.rollout_budget) ?? null
    state.generations = num(d.num_generations) ?? null
  } else if (name === 'baseline') {
    const score = num(d.accuracy) ?? 0
    state.baseline = {
      id: str(d.candidate_id) ?? 'baseline',
      score,
      prompt: str(d.prompt) ?? '',
      rollouts: x,
    }
    state.best ??= { id: state.baseline.id, score, prompt: state.baseline.prompt }
  } else if (name === 'generation.started') {
    state.generation = num(d.generation) ?? state.generation
  } else if (name === 'candidate.evaluated') {
    state.candidates.push({
      id: str(d.candidate_id) ?? `#${event.seq}`,
      parent: str(d.parent_id) ?? null,
      generation: num(d.generation) ?? state.generation,
      minibatch: num(d.accuracy) ?? 0,
      parentMinibatch: num(d.parent_accuracy) ?? null,
      accepted: d.accepted === true,
      rollouts: x,
      validation: null,
      validatedAt: null,
      prompt: str(d.prompt) ?? '',
    })
  } else if (name === 'validation.scored') {
    const c = state.candidates.find((c) => c.id === d.candidate_id)
    if (c !== undefined) Object.assign(c, { validation: num(d.accuracy) ?? 0, validatedAt: x })
  } else if (name === 'candidate.new_best') {
    state.best = {
      id: str(d.candidate_id) ?? '',
      score: num(d.best_score) ?? 0,
      prompt: str(d.best_prompt) ?? '',
    }
  } else if (name === 'progress') {
    state.rolloutsUsed = Math.max(state.rolloutsUsed, num(d.rollouts_completed) ?? 0)
    state.budget = num(d.rollouts_total) ?? state.budget
  } else if (name === 'job.completed' || name === 'job.failed' || name === 'job.cancelled') {
    state.status = name === 'job.completed' ? 'succeeded' : name === 'job.failed' ? 'failed' : 'cancelled'
    state.end = {
      bestScore: num(d.best_score) ?? null,
      baselineScore: num(d.baseline_score) ?? null,
      reason: str(d.finish_reason) ?? str(d.reason) ?? null,
      errorCode: str(d.error_code) ?? null,
    }
  }
  return true
}

/** Short id for tables and tooltips: `cand_1a2b…`. @param {string | null} id */
function short(id) {
  return id === null ? '–' : id.length > 14 ? `${id.slice(0, 13)}…` : id
}

/** @param {number | null | undefined} v */
function score(v) {
  return v === null || v === undefined ? '–' : v.toFixed(3)
}

// ---- chart: score (0..1) against rollouts used -------------------------------------------------

/** Size of the chart's viewBox and its inner plot area. */
export const CHART = { width: 640, height: 260, left: 44, right: 24, top: 12, bottom: 34 }

/**
 * Where everything of the chart goes, in viewBox units: one point per baseline, candidate
 * minibatch score and validation score; the baseline's line; the best-so-far step path.
 * @param {import('./job-page').PageState} state
 * @returns {import('./job-page').ChartGeometry}
 */
export function chartGeometry(state) {
  const { width, height, left, right, top, bottom } = CHART
  const xs = state.candidates.flatMap((c) => [c.rollouts, c.validatedAt ?? 0])
  const xMax = Math.max(1, state.budget ?? 0, state.rolloutsUsed, state.baseline?.rollouts ?? 0, ...xs)
  /** @param {number} v */
  const sx = (v) => left + (Math.min(Math.max(v, 0), xMax) / xMax) * (width - left - right)
  /** @param {number} v */
  const sy = (v) => top + (1 - Math.min(Math.max(v, 0), 1)) * (height - top - bottom)
  /** @type {import('./job-page').ChartPoint[]} */
  const points = []
  /** @param {import('./job-page').ChartPoint['kind']} kind @param {string} id @param {number} x @param {number} y */
  const point = (kind, id, x, y) => points.push({ kind, id, x, score: y, cx: sx(x), cy: sy(y) })
  const b = state.baseline
  if (b !== null) point('baseline', b.id, b.rollouts, b.score)
  for (const c of state.candidates) {
    point('minibatch', c.id, c.rollouts, c.minibatch)
    if (c.validation !== null && c.validatedAt !== null)
      point('validation', c.id, c.validatedAt, c.validation)
  }
  let best = ''
  if (b !== null) {
    let level = b.score
    best = `M${sx(b.rollouts).toFixed(1)},${sy(level).toFixed(1)}`
    const validated = points.filter((p) => p.kind === 'validation').sort((p, q) => p.x - q.x)
    for (const p of validated) {
      if (p.score <= level) continue
      best += ` H${p.cx.toFixed(1)} V${p.cy.toFixed(1)}`
      level = p.score
    }
    best += ` H${sx(Math.max(state.rolloutsUsed, b.rollouts)).toFixed(1)}`
  }
  const raw = xMax / 8
  const unit = 10 ** Math.floor(Math.log10(raw))
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * unit).find((s) => s >= raw) ?? raw)
  const xTicks = []
  for (let v = 0; v <= xMax; v += step) xTicks.push({ value: v, pos: sx(v) })
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((v) => ({ value: v, pos: sy(v) }))
  return { xMax, points, baselineY: b === null ? null : sy(b.score), bestPath: best, xTicks, yTicks }
}

const POINT_STYLE = {
  baseline: 'r="5" fill="#555"',
  minibatch: 'r="3.5" fill="none" stroke="#d97706" stroke-width="1.5"',
  validation: 'r="4.5" fill="#2563eb"',
}

/** The chart as an SVG string. @param {import('./job-page').PageState} state */
export function renderChart(state) {
  const g = chartGeometry(state)
  const { width, height, left, right, top, bottom } = CHART
  const x0 = left
  const x1 = width - right
  const y1 = height - bottom
  const parts = [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="score against rollouts used" data-points="${g.points.length}">`,
    `<line x1="${x0}" y1="${y1}" x2="${x1}" y2="${y1}" stroke="#999"/><line x1="${x0}" y1="${top}" x2="${x0}" y2="${y1}" stroke="#999"/>`,
  ]
  for (const t of g.yTicks) {
    parts.push(`<line x1="${x0}" y1="${t.pos}" x2="${x1}" y2="${t.pos}" stroke="#eee"/>`)
    parts.push(`<text x="${x0 - 6}" y="${t.pos + 4}" text-anchor="end">${t.value.toFixed(2)}</text>`)
  }
  for (const t of g.xTicks)
    parts.push(`<text x="${t.pos.toFixed(1)}" y="${y1 + 16}" text-anchor="middle">${t.value}</text>`)
  parts.push(`<text x="${(x0 + x1) / 2}" y="${height - 2}" text-anchor="middle">rollouts used</text>`)
  if (g.baselineY !== null) {
    parts.push(
      `<line class="baseline-line" x1="${x0}" y1="${g.baselineY.toFixed(1)}" x2="${x1}" y2="${g.baselineY.toFixed(1)}" stroke="#555" stroke-dasharray="4 4"/>`,
    )
  }
  if (g.bestPath !== '')
    parts.push(`<path class="best-line" d="${g.bestPath}" fill="none" stroke="#16a34a" stroke-width="2"/>`)
  for (const p of g.points) {
    const tip = `${p.kind} ${short(p.id)}: ${score(p.score)} at ${p.x} rollouts`
    parts.push(
      `<circle class="pt pt-${p.kind}" cx="${p.cx.toFixed(1)}" cy="${p.cy.toFixed(1)}" ${POINT_STYLE[p.kind]}><title>${escapeHtml(tip)}</title></circle>`,
    )
  }
  parts.push('</svg>')
  return parts.join('')
}

// ---- the best prompt against the baseline: a word diff --------------------------------------

/**
 * A word diff of `a` → `b` (whitespace runs are tokens too, so line breaks survive): the longest
 * common subsequence of tokens, as runs of `same`, `del` and `ins`. Texts too long for the table
 * (over a million token pairs) come out as one deletion and one insertion.
 * @param {string} a @param {string} b @returns {import('./job-page').DiffPart[]}
 */
export function diffWords(a, b) {
  const x = a.split(/(\s+)/).filter((t) => t !== '')
  const y = b.split(/(\s+)/).filter((t) => t !== '')
  /** @type {import('./job-page').DiffPart[]} */
  const out = []
  /** @param {'same' | 'del' | 'ins'} op @param {string} text */
  const push = (op, text) => {
    const last = out[out.length - 1]
    if (last !== undefined && last.op === op) last.text += text
    else out.push({ op, text })
  }
  if (x.length * y.length > 1_000_000) {
    if (a !== '') push('del', a)
    if (b !== '') push('ins', b)
    return out
  }
  const w = y.length + 1
  const lcs = new Uint32Array((x.length + 1) * w)
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      lcs[i * w + j] =
        x[i] === y[j]
          ? (lcs[(i + 1) * w + j + 1] ?? 0) + 1
          : Math.max(lcs[(i + 1) * w + j] ?? 0, lcs[i * w + j + 1] ?? 0)
    }
  }
  let i = 0
  let j = 0
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      push('same', /** @type {string} */ (x[i++]))
      j++
    } else if (j < y.length && (i === x.length || (lcs[i * w + j + 1] ?? 0) >= (lcs[(i + 1) * w + j] ?? 0))) {
      push('ins', /** @type {string} */ (y[j++]))
    } else {
      push('del', /** @type {string} */ (x[i++]))
    }
  }
  return out
}

/** @param {import('./job-page').PageState} state */
function renderDiff(state) {
  if (state.baseline === null || state.best === null) return '<p class="muted">No baseline yet.</p>'
  const who =
    state.best.id === state.baseline.id
      ? 'the baseline itself'
      : `${escapeHtml(short(state.best.id))}, ${score(state.best.score)}`
  const parts = diffWords(state.baseline.prompt, state.best.prompt).map((p) =>
    p.op === 'same' ? escapeHtml(p.text) : `<${p.op}>${escapeHtml(p.text)}</${p.op}>`,
  )
  return `<p class="muted">Best so far: ${who} (baseline ${score(state.baseline.score)}).</p><pre class="diff">${parts.join('')}</pre>`
}

/** @param {import('./job-page').PageState} state */
function renderTable(state) {
  if (state.candidates.length === 0) return '<p class="muted">No candidate yet.</p>'
  const rows = state.candidates.map((c) => {
    const best = state.best?.id === c.id ? ' class="best"' : ''
    const parent = c.parent === state.baseline?.id ? 'baseline' : short(c.parent)
    return (
      `<tr${best}><td><code>${escapeHtml(short(c.id))}</code></td><td>${c.generation}</td><td>${escapeHtml(parent)}</td>` +
      `<td>${score(c.minibatch)} <span class="muted">vs ${score(c.parentMinibatch)}</span></td><td>${score(c.validation)}</td>` +
      `<td>${c.rollouts}</td><td>${c.accepted ? 'accepted' : 'rejected'}</td></tr>`
    )
  })
  return (
    '<table class="candidates"><thead><tr><th>candidate</th><th>gen</th><th>parent</th><th>minibatch score</th>' +
    `<th>validation score</th><th>rollouts</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  )
}

/** @param {import('./job-page').PageState} state */
function renderSummary(state) {
  const budget = state.budget === null ? '' : ` of ${state.budget}`
  const pct = state.budget ? Math.min(100, (100 * state.rolloutsUsed) / state.budget) : 0
  const gen = state.generations === null ? `${state.generation}` : `${state.generation}/${state.generations}`
  const lines = [
    `<p><span class="status status-${escapeHtml(state.status)}">${escapeHtml(state.status)}</span> · generation ${gen}</p>`,
    `<p>rollouts used: <b class="rollouts">${state.rolloutsUsed}</b>${budget} <progress max="100" value="${pct.toFixed(1)}"></progress></p>`,
    `<p>baseline <b class="baseline-score">${score(state.baseline?.score)}</b> · best so far <b class="best-score">${score(state.best?.score)}</b></p>`,
  ]
  if (state.end !== null) {
    const why = [state.end.reason, state.end.errorCode].filter((v) => v !== null).join(' · ')
    lines.push(
      `<p class="result">Job ${escapeHtml(state.status)}: baseline ${score(state.end.baselineScore)} → best ${score(state.end.bestScore)}${why === '' ? '' : ` (${escapeHtml(why)})`}</p>`,
    )
  }
  return lines.join('')
}

/**
 * The HTML of each live section of the page, by element id.
 * @param {import('./job-page').PageState} state @returns {Record<string, string>}
 */
export function renderSections(state) {
  return {
    'job-summary': renderSummary(state),
    'job-chart': renderChart(state),
    'job-candidates': renderTable(state),
    'job-diff': renderDiff(state),
  }
}

// ---- in the browser: follow the job's event stream --------------------------------------------

/** Follows the job: EventSource resumes with `Last-Event-ID`; a failed stream is reopened with `since_seq`. */
function follow() {
  const root = /** @type {HTMLElement} */ (document.getElementById('job'))
  const state = JSON.parse(document.getElementById('job-state')?.textContent ?? '{}')
  let connections = 0
  let failures = 0
  const render = () => {
    for (const [id, html] of Object.entries(renderSections(state))) {
      const el = document.getElementById(id)
      if (el !== null) el.innerHTML = html
    }
    Object.assign(root.dataset, {
      seq: String(state.seq),
      status: state.status,
      ignored: String(state.ignored),
    })
  }
  /** @param {string} how */
  const mark = (how) => (root.dataset.stream = how)
  const connect = () => {
    const source = new EventSource(`${root.dataset.eventsUrl}?since_seq=${state.seq}`)
    source.onopen = () => {
      failures = 0
      root.dataset.connections = String(++connections)
      mark('open')
    }
    source.onmessage = (m) => {
      if (m.data === '[DONE]') {
        source.close()
        return mark('ended')
      }
      let event
      try {
        event = JSON.parse(m.data)
      } catch {
        return // not an event: skipped, as the client does
      }
      if (applyEvent(state, event)) render()
      else root.dataset.ignored = String(state.ignored)
      if (!FINAL.includes(state.status)) return
      source.close()
      mark('ended')
    }
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return mark('reconnecting') // resumes with Last-Event-ID
      failures += 1
      mark(failures > 5 ? 'lost' : 'reconnecting')
      if (failures <= 5) setTimeout(connect, 1000 * failures)
    }
  }
  if (FINAL.includes(state.status)) mark('ended')
  else connect()
}

if (typeof document !== 'undefined' && document.getElementById('job-state') !== null) follow()
