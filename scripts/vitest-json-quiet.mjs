// Vitest's JSON reporter without its closing "JSON report written to <file>" line: for
// `scripts/test.mjs`, whose report is a temporary file it reads for the `N passed, N failed`
// line and then deletes, so naming it would point at nothing. The file is `--outputFile.json`.
import { writeFile } from 'node:fs/promises'
import { JsonReporter } from 'vitest/reporters'

export default class QuietJsonReporter extends JsonReporter {
  async writeReport(report) {
    const file = this.ctx.config.outputFile?.json
    if (typeof file !== 'string') throw new Error('vitest-json-quiet: pass --outputFile.json=<file>')
    await writeFile(file, report, 'utf8')
  }
}
