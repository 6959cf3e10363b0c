import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMilliseconds } from './epoch-milliseconds.js';

/** Failed logins for one username from one address, counted within a window. */
@Entity({ name: 'auth_login_lockout' })
export class LoginLockout {
  /** SHA-256 of the normalised username and the client address: no personal data at rest. */
  @PrimaryColumn({ type: 'varchar', length: 64 })
  key!: string;

  @Column({ type: 'integer' })
  failures!: number;

  @Column({ name: 'window_start', type: 'bigint', transformer: epochMilliseconds })
  windowStart!: number;
}
