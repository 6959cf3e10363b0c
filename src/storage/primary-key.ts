import type { EntityMetadata } from 'typeorm';

type Column = EntityMetadata['primaryColumns'][number];

/**
 * What a user's primary key holds, as far as reading a session's user id goes: an integer (an
 * increment, a numeric column), a UUID, or text. Both places that turn a session's user id back
 * into a key — `UserManager.findById` and the session store's joined read — ask this one function.
 */
export function primaryKeyKind(column: Column): 'integer' | 'uuid' | 'text' {
  const type = typeof column.type === 'string' ? column.type.toLowerCase() : column.type;
  if (
    column.generationStrategy === 'increment' ||
    column.generationStrategy === 'rowid' ||
    type === Number ||
    ['int', 'integer', 'int2', 'int4', 'int8', 'smallint', 'bigint'].includes(type as string)
  ) {
    return 'integer';
  }
  if (column.generationStrategy === 'uuid' || type === 'uuid') return 'uuid';
  return 'text';
}

/** The shape of an integer key a session may name (at most 15 digits: a safe JavaScript integer). */
export const INTEGER_KEY = /^-?\d{1,15}$/;
/** The shape of a UUID key. */
export const UUID_KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
