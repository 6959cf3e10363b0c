/** `nestjs-session-auth/passwords`: hashers, the bcrypt worker pool, validators and reset tokens. */
export {
  PasswordHasher,
  BCryptSHA256Hasher,
  ScryptHasher,
  isPasswordUsable,
  UnknownPasswordHasher,
  UNUSABLE_PASSWORD_PREFIX,
  type BCryptSHA256HasherOptions,
} from '../passwords/password-hasher.js';
export type { PasswordHashAlgorithm, PasswordHasherName } from '../passwords/password-hasher.options.js';
export { BcryptWorkerPool, type BcryptWorkerPoolOptions } from '../passwords/bcrypt.worker-pool.js';
export { PasswordHasherBusy } from '../passwords/password-hasher-busy.js';
export {
  MinimumLengthValidator,
  UserAttributeSimilarityValidator,
  CommonPasswordValidator,
  NumericPasswordValidator,
  PasswordValidationError,
  ValidationError,
  DEFAULT_PASSWORD_VALIDATORS,
  type PasswordValidator,
  type PasswordValidatorName,
  type PasswordValidationIssue,
  type PasswordUser,
} from '../passwords/password-validation.js';
export {
  PasswordResetTokens,
  DEFAULT_PASSWORD_RESET_TIMEOUT,
  type ResetTokenUser,
  type PasswordResetTokenSettings,
} from '../password-reset-tokens.js';
