import { createInterface, type Interface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Questions } from './superuser.js';

/** Questions on the terminal, or on piped input; a secret answer is not echoed. */
export class TerminalQuestions implements Questions {
  private muted = false;
  private readonly reader: Interface;
  private readonly lines: AsyncIterator<string>;

  constructor() {
    // readline echoes what is typed through this stream; muting it hides a password.
    const output = new Writable({
      write: (chunk, _encoding, done) => {
        if (!this.muted) process.stdout.write(chunk);
        done();
      },
    });
    this.reader = createInterface({ input: process.stdin, output, terminal: process.stdin.isTTY === true });
    this.lines = this.reader[Symbol.asyncIterator]();
  }

  async ask(question: string, { secret = false } = {}): Promise<string> {
    process.stdout.write(question);
    this.muted = secret;
    const line = await this.lines.next();
    this.muted = false;
    // Only a visible answer typed on a terminal has had its Enter key echoed.
    if (secret || !process.stdin.isTTY) process.stdout.write('\n');
    if (line.done) throw new Error('the input ended before every question was answered.');
    return line.value;
  }

  complain(message: string): void {
    console.error(message);
  }

  close(): void {
    this.reader.close();
  }
}
