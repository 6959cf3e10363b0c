import { Catch, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ImproperlyConfigured } from '../errors.js';
import { wantsHtml } from '../request/negotiation.js';
import { sendHtml, sendJson, sendRedirect, setHeader } from '../request/platform.js';
import { CsrfFailure } from '../request/csrf.js';
import { SafeHtml } from './html.js';
import { builtInTemplates, STYLE_SOURCE, type AuthTemplates, type FormErrors } from './templates.js';
import { AUTH_VIEW_OPTIONS, type ResolvedViewOptions } from './view-options.js';

/**
 * How the built-in views answer: HTML pages to browsers, JSON to scripts (one rule for the views,
 * the guard and the filters, `wantsHtml`), never cached, never framed.
 */

export function prefersJson(request: Request): boolean {
  return !wantsHtml(request);
}

/**
 * Headers of every auth page: never cached, never framed (clickjacking: Django's
 * `XFrameOptionsMiddleware`), never sniffed into another content type, no referrer leaving the site. The
 * built-in pages also get a Content-Security-Policy allowing nothing but their own stylesheet;
 * a page from the app's own template keeps only the framing rule (its styles and images are
 * the app's to allow).
 */
function authHeaders(response: Response, builtIn = true): Response {
  setHeader(response, 'Cache-Control', 'max-age=0, no-cache, no-store, must-revalidate, private');
  setHeader(response, 'X-Frame-Options', 'DENY');
  setHeader(response, 'X-Content-Type-Options', 'nosniff');
  setHeader(
    response,
    'Content-Security-Policy',
    builtIn ? `default-src 'none'; style-src ${STYLE_SOURCE}; frame-ancestors 'none'; base-uri 'none'` : "frame-ancestors 'none'",
  );
  setHeader(response, 'Referrer-Policy', 'same-origin');
  return response;
}

export function redirectTo(response: Response, location: string): void {
  sendRedirect(authHeaders(response), 302, location);
}

export function sendAuthJson(response: Response, status: number, body: unknown): void {
  sendJson(authHeaders(response), status, body);
}

export function jsonFailure(response: Response, status: number, errors: FormErrors): void {
  const messages = Object.values(errors).flat() as string[];
  sendAuthJson(response, status, { statusCode: status, message: messages[0] ?? 'Invalid input.', errors });
}

type PageName = Exclude<keyof AuthTemplates, 'passwordResetEmail'>;

/** The views' templates: the app's where it gave one (`views.templates`), else the built-in ones. */
export class ViewTemplates {
  constructor(private readonly options: Pick<ResolvedViewOptions, 'templates'>) {}

  /** Whether the page comes from the app's own template. */
  custom(name: keyof AuthTemplates): boolean {
    return Object.hasOwn(this.options.templates, name);
  }

  /** Render a page; an app template must return the `html` tag's result, never a plain string. */
  render<N extends PageName>(name: N, context: Parameters<AuthTemplates[N]>[0]): string {
    const template = (this.options.templates[name] ?? builtInTemplates[name]) as (context: unknown) => unknown;
    const page = template(context);
    if (!(page instanceof SafeHtml)) {
      throw new ImproperlyConfigured(
        `The ${name} template returned ${typeof page}: build pages with the html tag (import { html } from 'nestjs-session-auth/views'), which escapes every value.`,
      );
    }
    return page.value;
  }

  /** Send a page with the auth pages' headers. */
  send<N extends PageName>(response: Response, status: number, name: N, context: Parameters<AuthTemplates[N]>[0]): void {
    sendHtml(authHeaders(response, !this.custom(name)), status, this.render(name, context));
  }

  email(context: Parameters<AuthTemplates['passwordResetEmail']>[0]): { subject: string; text: string } {
    const template = this.options.templates.passwordResetEmail ?? builtInTemplates.passwordResetEmail;
    const { subject, text } = template(context);
    return { subject: String(subject).replace(/[\r\n]+/g, ''), text: String(text) };
  }
}

/** Shows the CSRF failure as a page to browsers and as JSON to scripts; nothing else is caught. */
@Catch(CsrfFailure)
export class CsrfFailureFilter implements ExceptionFilter {
  private readonly templates: ViewTemplates;

  constructor(@Inject(AUTH_VIEW_OPTIONS) options: ResolvedViewOptions) {
    this.templates = new ViewTemplates(options);
  }

  catch(exception: CsrfFailure, host: ArgumentsHost): void {
    const request = host.switchToHttp().getRequest<Request>();
    const response = host.switchToHttp().getResponse<Response>();
    if (prefersJson(request)) return sendAuthJson(response, 403, exception.getResponse());
    this.templates.send(response, 403, 'csrfFailure', {});
  }
}
