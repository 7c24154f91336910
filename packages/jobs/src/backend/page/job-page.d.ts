/** Types of `job-page.js` (the job page's script, plain JavaScript served as is). */

/** A candidate as the page shows it. */
export interface PageCandidate {
  id: string
  parent: string | null
  generation: number
  /** Score on its train minibatch. */
  minibatch: number
  /** The parent's score on the same minibatch. */
  parentMinibatch: number | null
  accepted: boolean
  /** Rollouts used when its minibatch score came in. */
  rollouts: number
  validation: number | null
  /** Rollouts used when its validation score came in. */
  validatedAt: number | null
  prompt: string
}

/** Everything the page shows, folded from the job's events. */
export interface PageState {
  jobId: string
  /** The highest `seq` applied. */
  seq: number
  status: string
  budget: number | null
  rolloutsUsed: number
  generation: number
  generations: number | null
  baseline: { id: string; score: number; prompt: string; rollouts: number } | null
  candidates: PageCandidate[]
  best: { id: string; score: number; prompt: string } | null
  end: {
    bestScore: number | null
    baselineScore: number | null
    reason: string | null
    errorCode: string | null
  } | null
  /** Events ignored because their `seq` was not above the last one seen. */
  ignored: number
}

/** One point of the chart, in viewBox units (`cx`, `cy`) and data units (`x` rollouts, `score`). */
export interface ChartPoint {
  kind: 'baseline' | 'minibatch' | 'validation'
  id: string
  x: number
  score: number
  cx: number
  cy: number
}

/** Where the chart's parts go. */
export interface ChartGeometry {
  xMax: number
  points: ChartPoint[]
  baselineY: number | null
  /** SVG path of the best validation score so far (a step line from the baseline). */
  bestPath: string
  xTicks: { value: number; pos: number }[]
  yTicks: { value: number; pos: number }[]
}

/** A run of a word diff. */
export interface DiffPart {
  op: 'same' | 'del' | 'ins'
  text: string
}

export declare const CHART: {
  readonly width: number
  readonly height: number
  readonly left: number
  readonly right: number
  readonly top: number
  readonly bottom: number
}
export declare function escapeHtml(text: unknown): string
export declare function initialState(jobId: string): PageState
export declare function applyEvent(state: PageState, event: unknown): boolean
export declare function chartGeometry(state: PageState): ChartGeometry
export declare function renderChart(state: PageState): string
export declare function diffWords(a: string, b: string): DiffPart[]
export declare function renderSections(state: PageState): Record<string, string>
