/** `nestjs-session-auth/throttle`: the login throttle's stores and its refusal, for `throttle: { store }`. */
export {
  TooManyLoginAttempts,
  TypeOrmLockoutStore,
  RedisLockoutStore,
  type LockoutStore,
  type LockoutState,
  type RedisLikeClient,
  type LoginAttemptKind,
} from '../login-throttle.js';
export type { ThrottleOptions } from '../login-throttle.options.js';
