import password from '@inquirer/password';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CommandError } from './cli.errors.js';

/** The streams and environment a command runs with; tests pass their own. */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** More than any password; stops `--password-stdin` from buffering a file piped by mistake. */
const MAX_STDIN_BYTES = 64 * 1024;

/**
 * Questions to the operator. Passwords are read through `@inquirer/password`, which puts the
 * terminal in raw mode and echoes nothing of what is typed; other answers are read line by line.
 * Without a terminal nothing is prompted: the commands ask for `--password-stdin` or `--noinput`.
 */
export class Prompter {
  constructor(private readonly io: CliIo) {}

  get interactive(): boolean {
    return this.io.stdin.isTTY === true;
  }

  /** One visible line, e.g. a username. */
  ask(question: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const lines = createInterface({ input: this.io.stdin, output: this.io.stdout, terminal: false });
      let answered = false;
      lines.once('close', () => {
        if (!answered) reject(new CommandError('Operation cancelled (no more input).'));
      });
      lines.question(question, (answer) => {
        answered = true;
        lines.close();
        resolve(answer);
      });
    });
  }

  /** A password: nothing typed is echoed, and the value is never written anywhere. */
  async askSecret(question: string): Promise<string> {
    try {
      return await password(
        { message: question, mask: false, toggleMask: false },
        { input: this.io.stdin, output: keepOpen(this.io.stdout) },
      );
    } catch (error) {
      if ((error as Error)?.name === 'ExitPromptError') throw new CommandError('Operation cancelled.');
      throw error;
    }
  }

  async confirm(question: string): Promise<boolean> {
    return /^y(es)?$/i.test((await this.ask(`${question} [y/N]: `)).trim());
  }

  /** All of stdin, for `--password-stdin`: one line, its line ending dropped. */
  async readPasswordFromStdin(): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.io.stdin) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      size += buffer.length;
      if (size > MAX_STDIN_BYTES) throw new CommandError('--password-stdin: the input is too large for a password.');
      chunks.push(buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (/[\r\n]/.test(text)) {
      throw new CommandError('--password-stdin expects the password alone on one line.');
    }
    return text;
  }

  say(text: string): void {
    this.io.stdout.write(`${text}\n`);
  }

  warn(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }
}

/**
 * A view of `stream` that a prompt may end: Inquirer ends the output it was given once the answer
 * is in, which would close an injected stdout before the next prompt. Terminal size and TTY-ness
 * are passed through for its layout.
 */
function keepOpen(stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number }): Writable {
  const view = new Writable({
    write(chunk, encoding, callback) {
      stream.write(chunk, encoding, callback);
    },
  });
  for (const key of ['isTTY', 'columns', 'rows'] as const) {
    Object.defineProperty(view, key, { get: () => stream[key] });
  }
  return view;
}
