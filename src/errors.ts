/**
 * Thrown by a backend to stop the chain: `authenticate()` resolves `null` without asking the
 * backends after it, and a permission check answers "no" (Django's `PermissionDenied`).
 */
export class PermissionDenied extends Error {
  constructor(message = 'Permission denied.') {
    super(message);
    this.name = 'PermissionDenied';
  }
}

/** The module is set up in a way that cannot work; the message says how to fix it. */
export class ImproperlyConfigured extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImproperlyConfigured';
  }
}
