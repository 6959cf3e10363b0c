import { writeSync } from 'node:fs';

/**
 * Prints one closing line, `Tests: N passed, N failed, N skipped`, that any CI can read. It is
 * written as the process exits, so it comes after Jest's own summary. Skipped tests are the
 * suites of a service or program this machine has not configured (each said once, "NOT RUN").
 */
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    const skipped = numPendingTests + numTodoTests;
    const why = skipped > 0 ? ' (not run: left out by a filter such as -t, or their services are not configured here, see the "NOT RUN" lines; .ci/run runs them all)' : '';
    const line = `Tests: ${numPassedTests} passed, ${numFailedTests} failed, ${skipped} skipped${why}\n`;
    process.once('exit', () => writeSync(1, line));
  }
}
