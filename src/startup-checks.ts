import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { DataSource, EntityMetadata } from 'typeorm';
import { AUTH_CONFIG, type AuthConfig } from './auth.config.js';
import { BackendRegistry } from './backends/backend.registry.js';
import { ImproperlyConfigured } from './errors.js';
import { LoginThrottle } from './login-throttle.js';
import { SessionHandler } from './sessions/session-handler.js';
import { selectableColumns } from './storage/prepared-query.js';
import { authEntities } from './storage/index.js';
import type { NeedsEntities } from './storage/required-entities.js';
import { escapedTablePath } from './storage/sql-dialect.js';
import { UserManager } from './user.manager.js';

/**
 * Properties of the user entity every login uses: `findByUsername`, the password check, and
 * `lastLogin`, which `login()` writes (Django's `update_last_login`).
 */
const USER_PROPERTIES = ['username', 'password', 'lastLogin'];

/** Who needs each entity, by DataSource, for the messages. */
type Requirements = Map<DataSource, Map<Function, string>>;

/**
 * Mistakes in the app's TypeORM set-up that would otherwise show at the first login, as a 500
 * ("No metadata for LoginLockout", "no such table: auth_session"), caught when the app starts:
 * an entity left out of `entities`, a custom user entity without a column the module writes,
 * a table that was never created (synchronize off, migrations not run). Each part of the module
 * says what it needs (`requiredEntities()` on backends and stores); one `SELECT … WHERE 1 = 0`
 * per table checks the table and its columns without reading a row.
 */
@Injectable()
export class StartupChecks implements OnApplicationBootstrap {
  constructor(
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    private readonly backends: BackendRegistry,
    private readonly sessions: SessionHandler,
    private readonly throttle: LoginThrottle,
    private readonly users: UserManager<any>,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    for (const [dataSource, entities] of this.requirements()) {
      // An app that initializes its DataSource itself, later, gets no check.
      if (!dataSource.isInitialized) continue;
      this.checkRegistered(dataSource, entities);
      this.checkUserEntity(dataSource, entities);
      await this.checkTables(dataSource, entities);
    }
  }

  private requirements(): Requirements {
    const wanted: Requirements = new Map();
    const add = (part: NeedsEntities | undefined, who: string) => {
      const needs = part?.requiredEntities?.();
      if (!needs) return;
      const entities = wanted.get(needs.dataSource) ?? new Map<Function, string>();
      for (const entity of needs.entities) if (!entities.has(entity)) entities.set(entity, who);
      wanted.set(needs.dataSource, entities);
    };
    for (const { name, backend } of this.backends.all) add(backend as NeedsEntities, name);
    add(this.sessions.store as NeedsEntities | undefined, 'the session store');
    add(this.throttle.store, 'the login throttle');
    if (this.config.views) {
      add({ requiredEntities: () => ({ dataSource: this.users.dataSource, entities: [this.users.entity] }) }, 'the built-in views');
    }
    return wanted;
  }

  private checkRegistered(dataSource: DataSource, entities: Map<Function, string>): void {
    const missing = [...entities].filter(([entity]) => !dataSource.hasMetadata(entity));
    if (missing.length === 0) return;
    const own = missing.filter(([entity]) => !authEntities.includes(entity as (typeof authEntities)[number]));
    throw new ImproperlyConfigured(
      `AuthModule needs ${missing.map(([entity, who]) => `${entity.name} (for ${who})`).join(', ')}, ` +
        'which the DataSource does not have among its entities. ' +
        `Add them: TypeOrmModule.forRoot({ ..., entities: [...authEntities${own.map(([entity]) => `, ${entity.name}`).join('')}, ...yourEntities] }).`,
    );
  }

  /** A custom user entity without a column the module writes fails each login, not the start. */
  private checkUserEntity(dataSource: DataSource, entities: Map<Function, string>): void {
    const entity = this.users.entity;
    if (dataSource !== this.users.dataSource || !entities.has(entity)) return;
    const metadata = dataSource.getMetadata(entity);
    const missing = USER_PROPERTIES.filter((property) => !metadata.findColumnWithPropertyName(property));
    if (missing.length === 0) return;
    throw new ImproperlyConfigured(
      `The user entity ${entity.name} has no ${missing.join(', ')} column${missing.length === 1 ? '' : 's'}, ` +
        `which AuthModule needs (a login finds the user by username, checks its password and records lastLogin). ` +
        `Add ${missing.length === 1 ? 'it' : 'them'} to ${entity.name} (the built-in User shows the types).`,
    );
  }

  /** One statement per table that reads no row: a missing table or column fails here, not at a login. */
  private async checkTables(dataSource: DataSource, entities: Map<Function, string>): Promise<void> {
    const tables = new Map<EntityMetadata, string>();
    for (const [entity, who] of entities) {
      const metadata = dataSource.getMetadata(entity);
      tables.set(metadata, `${entity.name}, for ${who}`);
      for (const relation of metadata.manyToManyRelations) {
        if (relation.junctionEntityMetadata) tables.set(relation.junctionEntityMetadata, `${entity.name}.${relation.propertyName}`);
      }
    }
    for (const [metadata, what] of tables) {
      const columns = selectableColumns(metadata).map((column) => dataSource.driver.escape(column.databaseName));
      const sql = `SELECT ${columns.join(', ') || '1'} FROM ${escapedTablePath(dataSource, metadata.tablePath)} WHERE 1 = 0`;
      try {
        await dataSource.query(sql);
      } catch (error) {
        throw new ImproperlyConfigured(
          `AuthModule cannot read the table ${metadata.tablePath} (${what}): ${(error as Error).message}. ` +
            'The schema must match the entities before the app starts: run your migrations, or use synchronize: true ' +
            '(development only). npx nestjs-session-auth createsuperuser --create-schema creates the missing auth tables.',
        );
      }
    }
  }
}
