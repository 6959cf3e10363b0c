import { createHash } from 'node:crypto';
import { html, SafeHtml } from '../../views/html.js';
import { layout, STYLE_SOURCE } from '../../views/templates.js';

/** Sends the form by itself where scripts run; the button stays for where they do not. */
const SUBMIT_SCRIPT = "document.getElementById('end-session').submit();";

/**
 * The page's own policy: its stylesheet and that one script, nothing else; no `form-action`, as
 * the provider may send the browser on through hosts of its own before coming back.
 */
export const END_SESSION_PAGE_POLICY =
  `default-src 'none'; style-src ${STYLE_SOURCE}; script-src 'sha256-${createHash('sha256').update(SUBMIT_SCRIPT).digest('base64')}'; ` +
  "frame-ancestors 'none'; base-uri 'none'";

/**
 * "Logged out here; now at the provider": a form that POSTs the ID token hint to the provider's
 * end-session endpoint (OpenID Connect RP-Initiated Logout 1.0 §2 lets the provider take POST),
 * so the token never goes into a URL, where history and proxy logs would keep it.
 */
export function endSessionPage(page: { label: string; action: string; fields: Record<string, string> }): SafeHtml {
  const inputs = Object.entries(page.fields).map(([name, value]) => html`\n<input type="hidden" name="${name}" value="${value}">`);
  return layout(
    'Logged out',
    html`<p>You have been logged out here.</p>
<form id="end-session" method="post" action="${page.action}">${inputs}
<p><button type="submit">Log out at ${page.label} too</button></p>
</form>
<script>${new SafeHtml(SUBMIT_SCRIPT)}</script>`,
  );
}
