/** Markup that is already safe to send: the result of `html`…`` or of a layout. */
export class SafeHtml {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/**
 * Templates without a template engine: a tagged template literal that escapes every value it is
 * given, unless the value is itself `SafeHtml` (a nested template). Arrays are joined, and
 * `null`, `undefined` and `false` render nothing, so `${cond && html`…`}` and
 * `${items.map((item) => html`<li>${item}</li>`)}` read naturally.
 *
 * Escaping by default is the point: a username such as `<script>` shows as text, wherever a
 * template prints it.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  values.forEach((value, index) => {
    out += render(value) + strings[index + 1];
  });
  return new SafeHtml(out);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** The five characters that matter in HTML text and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ENTITIES[character]);
}
