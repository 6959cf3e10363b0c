import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { epochMilliseconds } from './epoch-milliseconds.js';

/** One express-session session; `userId` lets a user's sessions be found and ended. */
@Entity({ name: 'auth_session' })
export class SessionRecord {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  id!: string;

  @Column({ type: 'text' })
  data!: string;

  /** Milliseconds since the epoch: portable across SQLite and PostgreSQL, compared as numbers. */
  @Index('auth_session_expires_at_idx')
  @Column({ name: 'expires_at', type: 'bigint', transformer: epochMilliseconds })
  expiresAt!: number;

  /**
   * Set by logout (and by ending a user's sessions) instead of deleting the row, so a request
   * still running with this session cannot write it back to life; pruned at its expiry.
   */
  @Column({ type: 'boolean', default: false })
  revoked!: boolean;

  @Index('auth_session_user_id_idx')
  @Column({ name: 'user_id', type: 'varchar', length: 255, nullable: true })
  userId!: string | null;
}
