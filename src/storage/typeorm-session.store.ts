import { Logger } from '@nestjs/common';
import session from 'express-session';
import type { SessionData } from 'express-session';
import { In, LessThan, type DataSource, type Repository } from 'typeorm';
import { DEFAULT_SESSION_AGE_MS, SESSION_KEY } from '../auth.constants.js';
import { PreparedQuery, sqlNames } from './prepared-query.js';
import { parseSessionData } from './session-data.js';
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
  private readStatement?: PreparedQuery<{ data: string; expires_at: number | string }>;
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

  private get repository(): Repository<SessionRecord> {
    return this.dataSource.getRepository(SessionRecord);
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.read(sid).then((data) => callback(null, data), callback);
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

  override touch(sid: string, data: SessionData, callback?: Callback): void {
    this.extend(sid, data).then(() => callback?.(), (error) => callback?.(error));
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

  /** Stop the pruning timer (called when the Nest app closes). */
  close(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  /** The session's row: one prepared SELECT, the hot path of every logged-in request. */
  private get readQuery(): PreparedQuery<{ data: string; expires_at: number | string }> {
    if (!this.readStatement) {
      const { table, column } = sqlNames(this.dataSource, this.repository.metadata);
      const notRevoked = upsertDialect(this.dataSource) === 'postgres' ? 'false' : '0';
      this.readStatement = new PreparedQuery(
        this.dataSource,
        `SELECT ${column('data')} AS data, ${column('expiresAt')} AS expires_at FROM ${table} WHERE ${column('id')} = ? AND ${column('revoked')} = ${notRevoked}`,
      );
    }
    return this.readStatement;
  }

  private async read(sid: string): Promise<SessionData | null> {
    const found = await this.readQuery.one([sid]);
    const row = found && { data: found.data, expiresAt: Number(found.expires_at) };
    if (!row || row.expiresAt <= Date.now()) return null;
    const data = parseSessionData(row.data);
    if (!data) {
      // express-session throws on a row without a cookie object: every request with that cookie got a 503.
      this.logger.warn('Session data corrupted; starting an empty session.');
      return null;
    }
    if (this.expiries.size >= MAX_REMEMBERED_EXPIRIES) this.expiries.clear();
    this.expiries.set(sid, row.expiresAt);
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

  private async extend(sid: string, data: SessionData): Promise<void> {
    const stored = this.expiries.get(sid);
    this.expiries.delete(sid);
    const now = Date.now();
    const lifetime = data.cookie?.originalMaxAge ?? this.ttl;
    if (stored !== undefined && stored - now > lifetime * (1 - this.touchAfter)) return;
    await this.repository.update({ id: sid, revoked: false }, { expiresAt: this.expiryOf(data, now) });
  }

  private expiryOf(data: SessionData, now = Date.now()): number {
    const expires = data.cookie?.expires;
    if (expires) return new Date(expires).getTime();
    return now + this.ttl;
  }
}

const REVOKED = { revoked: true, data: '{}', userId: null };

function isMysql(dataSource: DataSource): boolean {
  const type = dataSource.options.type as string;
  return type === 'mysql' || type === 'mariadb';
}
