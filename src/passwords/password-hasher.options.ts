/** One password hashing algorithm, encoded as `<algorithm>$<rest>` (Django's hasher format). */
export interface PasswordHashAlgorithm {
  readonly algorithm: string;
  /** Hash `raw` with a new salt, or with `salt` when given (the hasher checks its form). */
  encode(raw: string, salt?: string): Promise<string>;
  verify(raw: string, encoded: string): Promise<boolean>;
  /** True when `encoded` was made with other parameters than this hasher uses now. */
  mustUpdate(encoded: string): boolean;
}

/** The built-in hashers, by the name their encoded hashes start with. */
export type PasswordHasherName = 'bcrypt_sha256' | 'scrypt';
