import type { DataSource } from 'typeorm';

/**
 * The entities a part of the module (a backend, a session or lockout store) reads and writes,
 * and the DataSource they live in. `StartupChecks` checks them when the app starts, so an entity
 * left out of `entities` or a table never created stops the start with a message, not the first
 * login with a 500.
 */
export interface RequiredEntities {
  dataSource: DataSource;
  entities: Function[];
}

/** A component that can say which entities it needs (optional on backends and stores). */
export interface NeedsEntities {
  requiredEntities?(): RequiredEntities | undefined;
}
