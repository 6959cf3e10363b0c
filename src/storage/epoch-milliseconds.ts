import type { ValueTransformer } from 'typeorm';

/**
 * Times stored as `bigint` milliseconds since the epoch: portable across SQLite and PostgreSQL
 * and compared as plain numbers. PostgreSQL hands bigint back as a string.
 */
export const epochMilliseconds: ValueTransformer = {
  to: (value: number) => value,
  from: (value: string | number | null) => (value == null ? value : Number(value)),
};
