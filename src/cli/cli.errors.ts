/**
 * A failure the operator can fix (unknown user, taken username, weak password, no database…):
 * printed as `Error: <message>` without a stack trace, and the command exits with code 1.
 * The message says what to do next.
 */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}
