import { Logger } from '@nestjs/common';
import session from 'express-session';
import type { SessionData } from 'express-session';
import { In, LessThan, MoreThan, type DataSource, type EntityMetadata, type Repository } from 'typeorm';
import { DEFAULT_SESSION_AGE_MS, SESSION_KEY } from '../auth.constants.js';
import { attachPrefetchedUser } from './prefetched-user.js';
import { PreparedQuery, selectableColumns, sqlNames } from './prepared-query.js';
import { primaryKeyKind } from './primary-key.js';
import type { RequiredEntities } from './required-entities.js';
import { parseSessionData, type StoredSession } from './session-data.js';
import { SessionRecord } from './session.entity.js';
import { escapedTablePath, placeholder, upsertDialect, type UpsertDialect } from './sql-dialect.js';

export interface TypeOrmSessionStoreOptions {
  /** Lifetime of a session without a cookie `maxAge`, in milliseconds (two weeks). */
  ttl?: number;
  /**
   * Share of the lifetime that must have passed before a read-only request pushes the expiry
   * forward. `0` extends on every request (one UPDATE each); the default `0.5` writes at most
   * once per half-lifetime.
   */
  touchAfter?: number;
  /** How often expired rows are deleted, in milliseconds; `false` turns pruning off. */
  pruneInterval?: number | false;
  /** Rows deleted per statement while pruning, so a large backlog never locks the table long. */
  pruneBatchSize?: number;
}

type Callback<T = void> = (error?: any, result?: T) => void;

/** Remembered row expiries are dropped past this many, so memory stays bounded. */
const MAX_REMEMBERED_EXPIRIES = 10_000;

/**
 * An express-session store over the app's TypeORM DataSource (SQLite, PostgreSQL, …).
 * One SELECT per request that carries a cookie, one upsert when the session changed, and no
 * write at all for a read-only request until `touchAfter` of the lifetime has passed.
 */
export class TypeOrmSessionStore extends session.Store {
  private readonly logger = new Logger('TypeOrmSessionStore');
  private readonly ttl: number;
  private readonly touchAfter: number;
  private readonly pruneBatchSize: number;
  private readonly pruneTimer?: NodeJS.Timeout;
  /** Expiry of each row as last read, so `touch` can tell whether it is worth a write. */
  private readonly expiries = new Map<string, number>();
  private readStatement?: PreparedQuery<SessionRow>;
  /** The user table read along with each session (`readUsersAlong`). */
  private usersAlong?: { entity: Function; metadata: EntityMetadata; join: string };
  /**
   * Sessions ended by `destroy` stay ended, whatever a request still running writes: true on
   * PostgreSQL, SQLite, MySQL and MariaDB, whose upsert refuses a revoked row in the same statement.
   */
  readonly revokeAware: boolean;

  constructor(
    private readonly dataSource: DataSource,
    options: TypeOrmSessionStoreOptions = {},
  ) {
    super();
    this.ttl = options.ttl ?? DEFAULT_SESSION_AGE_MS;
    this.touchAfter = options.touchAfter ?? 0.5;
    this.pruneBatchSize = options.pruneBatchSize ?? 1000;
    this.revokeAware = upsertDialect(dataSource) !== undefined || isMysql(dataSource);
    const interval = options.pruneInterval ?? 15 * 60 * 1000;
    if (interval !== false) {
      this.pruneTimer = setInterval(() => {
        this.prune().catch((error) => this.logger.warn(`Pruning expired sessions failed: ${error.message}`));
      }, interval);
      this.pruneTimer.unref();
    }
  }

  /** Checked when the app starts (`StartupChecks`): the sessions' table in this DataSource. */
  requiredEntities(): RequiredEntities {
    return { dataSource: this.dataSource, entities: [SessionRecord] };
  }

  private get repository(): Repository<SessionRecord> {
    return this.dataSource.getRepository(SessionRecord);
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.read(sid).then((data) => callback(null, data), callback);
  }

  /** `get` as a promise: the module's session layer reads through it, without a callback in between. */
  getData(sid: string): Promise<SessionData | null> {
    return this.read(sid);
  }

  override set(sid: string, data: SessionData, callback?: Callback): void {
    this.write(sid, data).then(() => callback?.(), (error) => callback?.(error));
  }

  /**
   * Revoke the session: the row stays, empty and marked, until its expiry, so a request that
   * loaded the session before cannot save it back when it ends (Django's SessionInterrupted).
   */
  override destroy(sid: string, callback?: Callback): void {
    this.expiries.delete(sid);
    this.repository
      .update({ id: sid }, REVOKED)
      .then(() => callback?.(), (error) => callback?.(error));
  }

  /** Push the expiry forward when `touchAfter` of the lifetime has passed; else answer at once, with no I/O. */
  override touch(sid: string, data: SessionData, callback?: Callback): void {
    const expiresAt = this.extendedExpiry(sid, data);
    if (expiresAt === undefined) {
      callback?.();
      return;
    }
    this.repository
      .update({ id: sid, revoked: false }, { expiresAt })
      .then(() => callback?.(), (error) => callback?.(error));
  }

  override clear(callback?: Callback): void {
    this.expiries.clear();
    this.repository.clear().then(() => callback?.(), (error) => callback?.(error));
  }

  override length(callback: Callback<number>): void {
    this.repository
      .count({ where: { revoked: false } })
      .then((count) => callback(null, count), callback);
  }

  /** Delete expired rows in batches; resolves the number deleted. */
  async prune(now = Date.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const batch = await this.repository.find({
        select: { id: true },
        where: { expiresAt: LessThan(now) },
        take: this.pruneBatchSize,
      });
      if (batch.length === 0) return total;
      // The expiry is checked again: a request may have extended one of these rows meanwhile.
      const result = await this.repository.delete({ id: In(batch.map((row) => row.id)), expiresAt: LessThan(now) });
      total += result.affected ?? batch.length;
      if (batch.length < this.pruneBatchSize) return total;
    }
  }

  /** End every session of a user, e.g. after an administrator disabled the account. */
  async destroyUserSessions(userId: string | number): Promise<number> {
    const result = await this.repository.update({ userId: String(userId), revoked: false }, REVOKED);
    return result.affected ?? 0;
  }

  /** The live sessions of a user: id, data and expiry (for `AuthService.getUserSessions`). */
  async userSessions(userId: string | number): Promise<StoredSession[]> {
    const rows = await this.repository.find({
      where: { userId: String(userId), revoked: false, expiresAt: MoreThan(Date.now()) },
      select: { id: true, data: true, expiresAt: true },
    });
    const sessions: StoredSession[] = [];
    for (const row of rows) {
      const data = parseSessionData(row.data);
      if (data) sessions.push({ id: row.id, data, expiresAt: Number(row.expiresAt) });
    }
    return sessions;
  }

  /** Stop the pruning timer (called when the Nest app closes). */
  close(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  /**
   * Read each session's user in the same statement as the session: one read per logged-in
   * request instead of two. `entity` is the user entity (ModelBackend's users), in this store's
   * database; AuthModule sets this up when its backends load users that way. The row rides on
   * the returned data under a symbol (see `prefetched-user.ts`), never as session data. Returns
   * `false`, and changes nothing, where the join cannot be written safely (another database, a
   * composite or unusual primary key): sessions and users are then read one after the other.
   */
  readUsersAlong(dataSource: DataSource, entity: Function): boolean {
    if (dataSource !== this.dataSource || !dataSource.hasMetadata(entity)) return false;
    const metadata = dataSource.getMetadata(entity);
    if (metadata.primaryColumns.length !== 1) return false;
    if (selectableColumns(metadata).some((column) => column.databaseName.startsWith(ALIAS_PREFIX))) return false;
    const userId = `s.${sqlNames(dataSource, this.repository.metadata).column('userId')}`;
    const primary = `u.${dataSource.driver.escape(metadata.primaryColumns[0].databaseName)}`;
    const key = joinKey(dataSource, metadata.primaryColumns[0], userId);
    if (!key) return false;
    this.usersAlong = { entity, metadata, join: `${primary} = ${key}` };
    this.readStatement = undefined;
    return true;
  }

  /** The session's row (and its user's, see `readUsersAlong`): one prepared SELECT, the hot path of every logged-in request. */
  private get readQuery(): PreparedQuery<SessionRow> {
    if (!this.readStatement) {
      const { table, column } = sqlNames(this.dataSource, this.repository.metadata);
      const notRevoked = upsertDialect(this.dataSource) === 'postgres' ? 'false' : '0';
      const session = `s.${column('data')} AS ${ALIAS_PREFIX}data, s.${column('expiresAt')} AS ${ALIAS_PREFIX}expires_at, s.${column('userId')} AS ${ALIAS_PREFIX}user_id`;
      const where = `WHERE s.${column('id')} = ? AND s.${column('revoked')} = ${notRevoked}`;
      const along = this.usersAlong;
      if (along) {
        const users = sqlNames(this.dataSource, along.metadata);
        const columns = selectableColumns(along.metadata).map((c) => `u.${this.dataSource.driver.escape(c.databaseName)}`);
        this.readStatement = new PreparedQuery(
          this.dataSource,
          `SELECT ${session}, ${columns.join(', ')} FROM ${table} s LEFT JOIN ${users.table} u ON ${along.join} ${where}`,
        );
      } else {
        this.readStatement = new PreparedQuery(this.dataSource, `SELECT ${session} FROM ${table} s ${where}`);
      }
    }
    return this.readStatement;
  }

  private async read(sid: string): Promise<SessionData | null> {
    const found = await this.readQuery.one([sid]);
    const expiresAt = found ? Number(found.nsa_session_expires_at) : 0;
    if (!found || expiresAt <= Date.now()) return null;
    const data = parseSessionData(found.nsa_session_data);
    if (!data) {
      // express-session throws on a row without a cookie object: every request with that cookie got a 503.
      this.logger.warn('Session data corrupted; starting an empty session.');
      return null;
    }
    const along = this.usersAlong;
    const userId = found.nsa_session_user_id;
    if (along && typeof userId === 'string') {
      const primary = along.metadata.primaryColumns[0].databaseName;
      attachPrefetchedUser(data, { entity: along.entity, userId, row: found[primary] == null ? null : found });
    }
    if (this.expiries.size >= MAX_REMEMBERED_EXPIRIES) this.expiries.clear();
    this.expiries.set(sid, expiresAt);
    return data;
  }

  private async write(sid: string, data: SessionData): Promise<void> {
    this.expiries.delete(sid);
    const userId = (data as unknown as Record<string, unknown>)[SESSION_KEY];
    const row = {
      id: sid,
      data: JSON.stringify(data),
      expiresAt: this.expiryOf(data),
      userId: typeof userId === 'string' ? userId : null,
    };
    const dialect = upsertDialect(this.dataSource);
    if (dialect) {
      await this.upsertUnlessRevoked(row, dialect);
      return;
    }
    if (isMysql(this.dataSource)) {
      await this.upsertUnlessRevokedOnMysql(row);
      return;
    }
    // Other databases: a plain upsert (a revoked row can be written back by a stale request).
    await this.dataSource
      .createQueryBuilder()
      .insert()
      .into(SessionRecord)
      .values(row)
      .orUpdate(['data', 'expires_at', 'user_id'], ['id'])
      .execute();
  }

  /**
   * One statement: insert, or update unless revoked. TypeORM's upsert cannot carry the WHERE,
   * so the SQL is written here for the two dialects that share `ON CONFLICT … DO UPDATE … WHERE`.
   */
  private async upsertUnlessRevoked(
    row: { id: string; data: string; expiresAt: number; userId: string | null },
    dialect: UpsertDialect,
  ): Promise<void> {
    const metadata = this.repository.metadata;
    const q = (name: string) => this.dataSource.driver.escape(name);
    const column = (property: string) => q(metadata.findColumnWithPropertyName(property)!.databaseName);
    const [id, data, expiresAt, userId, revoked] = ['id', 'data', 'expiresAt', 'userId', 'revoked'].map(column);
    const table = escapedTablePath(this.dataSource, metadata.tablePath);
    const p = (n: number) => placeholder(dialect, n);
    const no = dialect === 'postgres' ? 'false' : '0';
    await this.dataSource.query(
      `INSERT INTO ${table} AS current (${id}, ${data}, ${expiresAt}, ${userId}, ${revoked}) ` +
        `VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${no}) ` +
        `ON CONFLICT (${id}) DO UPDATE SET ${data} = EXCLUDED.${data}, ${expiresAt} = EXCLUDED.${expiresAt}, ` +
        `${userId} = EXCLUDED.${userId} WHERE NOT current.${revoked}`,
      [row.id, row.data, row.expiresAt, row.userId],
    );
  }

  /** The same on MySQL and MariaDB: `ON DUPLICATE KEY UPDATE` keeps a revoked row as it is. */
  private async upsertUnlessRevokedOnMysql(row: { id: string; data: string; expiresAt: number; userId: string | null }): Promise<void> {
    const { table, column } = sqlNames(this.dataSource, this.repository.metadata);
    const [id, data, expiresAt, userId, revoked] = ['id', 'data', 'expiresAt', 'userId', 'revoked'].map(column);
    const keep = (name: string) => `${name} = IF(${revoked}, ${name}, VALUES(${name}))`;
    await this.dataSource.query(
      `INSERT INTO ${table} (${id}, ${data}, ${expiresAt}, ${userId}, ${revoked}) VALUES (?, ?, ?, ?, 0) ` +
        `ON DUPLICATE KEY UPDATE ${[data, expiresAt, userId].map(keep).join(', ')}`,
      [row.id, row.data, row.expiresAt, row.userId],
    );
  }

  /** The row's new expiry when a touch should write it, else `undefined`. */
  private extendedExpiry(sid: string, data: SessionData): number | undefined {
    const stored = this.expiries.get(sid);
    this.expiries.delete(sid);
    const now = Date.now();
    const lifetime = data.cookie?.originalMaxAge ?? this.ttl;
    if (stored !== undefined && stored - now > lifetime * (1 - this.touchAfter)) return undefined;
    return this.expiryOf(data, now);
  }

  private expiryOf(data: SessionData, now = Date.now()): number {
    const expires = data.cookie?.expires;
    if (expires) return new Date(expires).getTime();
    // A cookie that ends with the browser: the session lives in the store as long as its age says.
    return now + (data.cookie?.originalMaxAge ?? this.ttl);
  }
}

const REVOKED = { revoked: true, data: '{}', userId: null };

/** Column aliases of the session's own columns in the read (user columns keep their names). */
const ALIAS_PREFIX = 'nsa_session_';

type SessionRow = Record<string, unknown> & {
  nsa_session_data: string;
  nsa_session_expires_at: number | string;
  nsa_session_user_id: string | null;
};

/**
 * The session row's `user_id` (text) as a value of the user's primary key, in SQL. SQLite
 * compares a text with an integer key by the key's affinity; PostgreSQL needs a cast, made only
 * of text of the shape `UserManager.findById` accepts (a cast of anything else would fail the
 * whole read; the PostgreSQL regexes say the same as INTEGER_KEY and UUID_KEY, without a `?`,
 * which PreparedQuery takes for a placeholder). `undefined` for other databases and key types.
 */
function joinKey(dataSource: DataSource, primary: EntityMetadata['primaryColumns'][number], userId: string): string | undefined {
  const dialect = upsertDialect(dataSource);
  if (dialect === 'sqlite') return userId;
  if (dialect !== 'postgres') return undefined;
  const kind = primaryKeyKind(primary);
  if (kind === 'integer') return `CASE WHEN ${userId} ~ '^-{0,1}[0-9]{1,15}$' THEN CAST(${userId} AS bigint) END`;
  if (kind === 'uuid') {
    return `CASE WHEN ${userId} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN CAST(${userId} AS uuid) END`;
  }
  const type = typeof primary.type === 'string' ? primary.type.toLowerCase() : primary.type;
  return type === String || ['varchar', 'character varying', 'text', 'citext'].includes(type as string) ? userId : undefined;
}

function isMysql(dataSource: DataSource): boolean {
  const type = dataSource.options.type as string;
  return type === 'mysql' || type === 'mariadb';
}
