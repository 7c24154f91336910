/**
 * The job page's script, its pure parts: the fold of events (the `seq` rule), the chart geometry,
 * the word diff and the escaping.
 */
import { describe, expect, it } from 'vitest'
import {
  applyEvent,
  CHART,
  chartGeometry,
  diffWords,
  escapeHtml,
  initialState,
  renderChart,
  renderSections,
  type DiffPart,
  type PageState,
} from './job-page.js'

const G = 'learning.policy.gepa.'

/** A run's events: baseline 0.25 at 50 rollouts, two candidates, one validated at 0.5. */
function events(): Record<string, unknown>[] {
  const list: [string, Record<string, unknown>][] = [
    ['job.started', { rollout_budget: 200, num_generations: 2 }],
    ['baseline', { candidate_id: 'cand_base', accuracy: 0.25, prompt: 'Answer billing.', rollouts_used: 50 }],
    ['generation.started', { generation: 1 }],
    [
      'candidate.evaluated',
      { candidate_id: 'cand_a', parent_id: 'cand_base', generation: 1, accuracy: 0.6, parent_accuracy: 0.2 },
    ],
    ['validation.scored', { candidate_id: 'cand_a', accuracy: 0.5, rollouts_used: 110 }],
    [
      'candidate.new_best',
      { candidate_id: 'cand_a', best_score: 0.5, best_prompt: 'Answer billing.\nIf x.' },
    ],
    ['progress', { rollouts_completed: 110, rollouts_total: 200 }],
    [
      'candidate.evaluated',
      { candidate_id: 'cand_b', parent_id: 'cand_a', accuracy: 0.4, accepted: false, rollouts_used: 130 },
    ],
  ]
  return list.map(([name, data], i) => ({ type: `${G}${name}`, seq: i + 1, data }))
}

function folded(count = Infinity): PageState {
  const state = initialState('pl_1')
  for (const e of events().slice(0, count)) applyEvent(state, e)
  return state
}

describe('applyEvent', () => {
  it('folds a run: budget, baseline, candidates with their rollouts, validation, best', () => {
    const s = folded()
    expect(s).toMatchObject({ seq: 8, status: 'running', budget: 200, rolloutsUsed: 130, generations: 2 })
    expect(s.baseline).toEqual({ id: 'cand_base', score: 0.25, prompt: 'Answer billing.', rollouts: 50 })
    // cand_a had no rollouts_used: it takes the last count seen (50)
    expect(s.candidates.map((c) => [c.id, c.rollouts, c.validation, c.validatedAt, c.accepted])).toEqual([
      ['cand_a', 50, 0.5, 110, false],
      ['cand_b', 130, null, null, false],
    ])
    expect(s.best).toEqual({ id: 'cand_a', score: 0.5, prompt: 'Answer billing.\nIf x.' })
  })

  it('ignores an event whose seq is not above the last one seen, so a replay adds no point', () => {
    const s = folded()
    const before = JSON.stringify({ ...s, ignored: 0 })
    for (const e of events()) expect(applyEvent(s, e)).toBe(false)
    expect(applyEvent(s, { type: `${G}progress`, data: {} })).toBe(false) // no seq
    expect(s.ignored).toBe(events().length + 1)
    expect(JSON.stringify({ ...s, ignored: 0 })).toBe(before)
    expect(chartGeometry(s).points).toHaveLength(4)
  })

  it('ends with the terminal event: status and result', () => {
    const s = folded()
    applyEvent(s, {
      type: `${G}job.completed`,
      seq: 9,
      data: { best_score: 0.5, baseline_score: 0.25, finish_reason: 'budget_exhausted' },
    })
    expect(s.status).toBe('succeeded')
    expect(s.end).toEqual({
      bestScore: 0.5,
      baselineScore: 0.25,
      reason: 'budget_exhausted',
      errorCode: null,
    })
    applyEvent(s, { type: `${G}job.failed`, seq: 10, data: { reason: 'x', error_code: 'E' } })
    expect(s.status).toBe('failed')
  })
})

describe('chartGeometry', () => {
  const plot = {
    x0: CHART.left,
    x1: CHART.width - CHART.right,
    y0: CHART.top,
    y1: CHART.height - CHART.bottom,
  }

  it('scales rollouts 0..budget to the plot width and scores 0..1 to its height (up is better)', () => {
    const g = chartGeometry(folded())
    expect(g.xMax).toBe(200)
    expect(g.points.map((p) => [p.kind, p.x, p.score])).toEqual([
      ['baseline', 50, 0.25],
      ['minibatch', 50, 0.6],
      ['validation', 110, 0.5],
      ['minibatch', 130, 0.4],
    ])
    const [base] = g.points
    expect(base?.cx).toBeCloseTo(plot.x0 + (50 / 200) * (plot.x1 - plot.x0))
    expect(base?.cy).toBeCloseTo(plot.y1 - 0.25 * (plot.y1 - plot.y0))
    expect(g.baselineY).toBeCloseTo(base?.cy ?? NaN)
    for (const p of g.points) {
      expect(p.cx).toBeGreaterThanOrEqual(plot.x0)
      expect(p.cx).toBeLessThanOrEqual(plot.x1)
      expect(p.cy).toBeGreaterThanOrEqual(plot.y0)
      expect(p.cy).toBeLessThanOrEqual(plot.y1)
    }
    expect(g.yTicks.map((t) => t.pos)).toEqual([
      plot.y1,
      expect.any(Number),
      expect.any(Number),
      expect.any(Number),
      plot.y0,
    ])
    expect(g.xTicks[0]).toEqual({ value: 0, pos: plot.x0 })
    expect(g.xTicks.at(-1)?.value).toBe(200)
  })

  it('draws best-so-far as a step line that only goes up, from the baseline to the rollouts used', () => {
    const s = folded()
    s.candidates.push({ ...s.candidates[0]!, id: 'cand_low', validation: 0.3, validatedAt: 120 })
    const g = chartGeometry(s)
    const v = g.points.find((p) => p.kind === 'validation' && p.id === 'cand_a')!
    const base = g.points[0]!
    const end = plot.x0 + (130 / 200) * (plot.x1 - plot.x0)
    expect(g.bestPath).toBe(
      `M${base.cx.toFixed(1)},${base.cy.toFixed(1)} H${v.cx.toFixed(1)} V${v.cy.toFixed(1)} H${end.toFixed(1)}`,
    )
  })

  it('grows past the budget instead of drawing outside, and has no path before the baseline', () => {
    const s = folded()
    s.rolloutsUsed = 300
    expect(chartGeometry(s).xMax).toBe(300)
    const empty = chartGeometry(initialState('pl_0'))
    expect(empty).toMatchObject({ xMax: 1, points: [], baselineY: null, bestPath: '' })
  })

  it('renders one circle per point, counted in data-points', () => {
    const svg = renderChart(folded())
    expect(svg.match(/<circle /g)).toHaveLength(4)
    expect(svg).toContain('data-points="4"')
    expect(svg.match(/class="pt pt-minibatch"/g)).toHaveLength(2)
  })
})

/** The texts a diff turns `a` into and comes from. */
function sides(parts: DiffPart[]): { a: string; b: string } {
  return {
    a: parts
      .filter((p) => p.op !== 'ins')
      .map((p) => p.text)
      .join(''),
    b: parts
      .filter((p) => p.op !== 'del')
      .map((p) => p.text)
      .join(''),
  }
}

describe('diffWords', () => {
  it('marks added and removed words, keeps whitespace and line breaks', () => {
    const a = 'Answer with one word.\nBe brief.'
    const b = 'Answer with exactly one word.\nIf the input mentions "parcel", answer "shipping".\nBe brief.'
    const parts = diffWords(a, b)
    expect(sides(parts)).toEqual({ a, b })
    expect(parts.filter((p) => p.op === 'del')).toEqual([])
    expect(parts.filter((p) => p.op === 'ins').map((p) => p.text.trim())).toEqual([
      'exactly',
      'If the input mentions "parcel", answer "shipping".',
    ])
    expect(diffWords('a b c', 'a x c')).toEqual([
      { op: 'same', text: 'a ' },
      { op: 'ins', text: 'x' },
      { op: 'del', text: 'b' },
      { op: 'same', text: ' c' },
    ])
  })

  it('handles equal, empty and huge texts', () => {
    expect(diffWords('same text', 'same text')).toEqual([{ op: 'same', text: 'same text' }])
    expect(diffWords('', 'new')).toEqual([{ op: 'ins', text: 'new' }])
    expect(diffWords('old', '')).toEqual([{ op: 'del', text: 'old' }])
    const big = Array.from({ length: 1200 }, (_, i) => `w${i}`).join(' ')
    const parts = diffWords(big, `${big} more`)
    expect(parts).toEqual([
      { op: 'del', text: big },
      { op: 'ins', text: `${big} more` },
    ])
  })
})

describe('escaping', () => {
  it('escapes every HTML-significant character', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
  })

  it('renders prompts and ids as text in every section', () => {
    const s = folded()
    const evil = '<img src=x onerror=alert(1)>'
    s.baseline = { ...s.baseline!, prompt: evil }
    s.best = { id: `cand_<b>`, score: 0.5, prompt: `${evil} <script>alert(2)</script>` }
    s.candidates[0]!.id = '<i>x</i>'
    s.status = '<u>running</u>'
    const html = Object.values(renderSections(s)).join('')
    expect(html).not.toMatch(/<(?:img\s|script>|b>|i>|u>)/)
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;')
    expect(html).toContain('<ins> &lt;script&gt;alert(2)&lt;/script&gt;</ins>')
  })
})
