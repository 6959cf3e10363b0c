import type { Logger } from 'typeorm';

/** A TypeORM logger that records every statement, so tests can hold request paths to a budget. */
export class SqlCounter implements Logger {
  statements: string[] = [];

  logQuery(query: string): void {
    this.statements.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}

  reset(): void {
    this.statements = [];
  }

  get reads(): string[] {
    return this.statements.filter((sql) => /^\s*SELECT\b/i.test(sql));
  }

  get writes(): string[] {
    return this.statements.filter((sql) => !/^\s*SELECT\b/i.test(sql));
  }

  /** Count the statements `run` causes. */
  async during(run: () => Promise<unknown>): Promise<string[]> {
    this.reset();
    await run();
    return [...this.statements];
  }
}
