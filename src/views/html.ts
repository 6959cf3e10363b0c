/**
 * HTML built with a tagged template: every interpolated value is escaped unless it is itself
 * `SafeHtml` (made by this tag or by `safeHtml`), as Django's templates autoescape variables and
 * `mark_safe` opts out. The built-in pages are written with it, and so are the pages an app gives
 * as templates of its own: a value can only reach the page as text unless somebody marked it safe.
 */
export class SafeHtml {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/** `html\`<p>${name}</p>\``: the values escaped, arrays joined, `null`, `undefined` and `false` left out. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Markup you trust, as is (Django's `mark_safe`): never a value that came from a request or a user. */
export function safeHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#x27;');
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(value);
}
