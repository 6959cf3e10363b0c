import { writeSync } from 'node:fs';

/**
 * Prints one closing line, `Tests: N passed, N failed, N skipped`, that any CI can read. It is
 * written as the process exits, so it comes after Jest's own summary.
 */
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    const line = `Tests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`;
    process.once('exit', () => writeSync(1, line));
  }
}
