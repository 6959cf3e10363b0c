import { isSafeRedirectUrl } from 'nestjs-session-auth';

const allowedHosts = ['testserver'];

describe('isSafeRedirectUrl', () => {
  describe('refuses a hostile next value', () => {
    it.each([
      ['another host', 'http://example.com'],
      ['another host over https', 'https://example.com'],
      ['a scheme-relative URL to another host', '//example.com'],
      ['a scheme-relative URL with a path', '//example.com/account'],
      ['three slashes', '///example.com'],
      ['a backslash that browsers read as a slash', '/\\example.com'],
      ['two backslashes', '\\\\example.com'],
      ['three backslashes', '\\\\\\example.com'],
      ['backslash then slash', '\\/example.com'],
      ['slash, backslash, slash', '/\\/example.com'],
      ['backslashes and slashes mixed', '\\\\//example.com'],
      ['a scheme without a host', 'http:///example.com'],
      ['a scheme, a slash and a backslash', 'http:/\\//example.com'],
      ['a scheme and a backslash', 'http:\\/example.com'],
      ['a scheme, slash, backslash', 'http:/\\example.com'],
      ['a scheme with no host at all', 'http:999999999'],
      ['ftp with no host', 'ftp:9999999999'],
      ['ftp', 'ftp://example.com'],
      ['ftp to the allowed host', 'ftp://testserver/'],
      ['javascript:', 'javascript:alert("XSS")'],
      ['JavaScript: in mixed case', 'JavaScript:alert(1)'],
      ['javascript: after a newline (stripped first)', '\njavascript:alert(x)'],
      ['javascript: split by a tab', 'java\tscript:alert(1)'],
      ['data:', 'data:text/html,<script>alert(1)</script>'],
      ['mailto:', 'mailto:someone@example.com'],
      ['a leading backspace (control character)', '\x08//example.com'],
      ['a leading NUL', '\x00//example.com'],
      ['a tab between the slashes', '/\t/example.com'],
      ['a newline inside (header splitting)', '/ok\r\nSet-Cookie: a=b'],
      ['a zero-width space at the start', '\u200b//example.com'],
      ['the allowed host as user name', 'http://testserver@example.com'],
      ['the allowed host behind a backslash in the credentials', 'http://otherserver\\@example.com'],
      ['backslashes around credentials', 'http:\\\\testserver\\@example.com'],
      ['credentials after a backslash', 'http://testserver\\me:pass@example.com'],
      ['a path after a backslash', 'http:\\\\testserver\\confirm\\me@example.com'],
      ['an unclosed IPv6 bracket', 'http://[2001:cdba:0000:0000:0000:0000:3257:9652/'],
      ['an unopened IPv6 bracket', 'http://2001:cdba:0000:0000:0000:0000:3257:9652]/'],
      ['a bracketed host that is not IPv6', 'http://[evil.com]/'],
      ['a full-width dot host', '//example\uff0ecom/'],
      ['a host normalising to URL syntax', '//testserver\uff0fexample.com/'],
      ['the allowed host with another port', 'http://testserver:8080/'],
      ['a newline alone', '\n'],
      ['an empty string', ''],
      ['whitespace only', '   '],
    ])('%s: %j', (_label, url) => {
      expect(isSafeRedirectUrl(url, { allowedHosts })).toBe(false);
    });

    it.each([
      ['undefined', undefined],
      ['null', null],
      ['a number', 42],
      ['an array (a repeated query parameter)', ['/a', '//evil.com']],
      ['an object (a nested query parameter)', { href: '/a' }],
    ])('anything but a string: %s', (_label, url) => {
      expect(isSafeRedirectUrl(url, { allowedHosts })).toBe(false);
    });
  });

  describe('accepts a return URL on this site', () => {
    it.each([
      ['a relative path with a query naming another site', '/view/?param=http://example.com'],
      ['a query naming an https site', '/view/?param=https://example.com'],
      ['a query naming an ftp site', '/view?param=ftp://example.com'],
      ['a relative path without a leading slash', 'view/?param=//example.com'],
      ['the allowed host over https', 'https://testserver/'],
      ['an upper-case scheme', 'HTTPS://testserver/'],
      ['the allowed host, scheme-relative', '//testserver/'],
      ['an @ in the query', 'http://testserver/confirm?email=me@example.com'],
      ['percent-encoded spaces', '/url%20with%20spaces/'],
      ['a colon inside a path segment', 'path/http:2222222222'],
      ['surrounding whitespace (stripped)', '  /dashboard  '],
      ['a fragment', '/page#section'],
      ['non-ASCII in the path', '/café/'],
    ])('%s: %j', (_label, url) => {
      expect(isSafeRedirectUrl(url, { allowedHosts })).toBe(true);
    });
  });

  it('takes the allowed hosts as a Set as well as an array', () => {
    expect(isSafeRedirectUrl('https://testserver/', { allowedHosts: new Set(['testserver']) })).toBe(true);
    expect(isSafeRedirectUrl('https://example.com/', { allowedHosts: new Set(['testserver']) })).toBe(false);
  });

  it('compares host:port exactly, so a port must be listed to be allowed', () => {
    const hosts = ['testserver:8000'];
    expect(isSafeRedirectUrl('http://testserver:8000/a', { allowedHosts: hosts })).toBe(true);
    expect(isSafeRedirectUrl('http://testserver/a', { allowedHosts: hosts })).toBe(false);
    expect(isSafeRedirectUrl('http://testserver:8001/a', { allowedHosts: hosts })).toBe(false);
  });

  it('allows no absolute URL at all when no host is allowed', () => {
    expect(isSafeRedirectUrl('https://testserver/', { allowedHosts: [] })).toBe(false);
    expect(isSafeRedirectUrl('/still/fine', { allowedHosts: [] })).toBe(true);
  });

  it('accepts IPv6 hosts in brackets when they are allowed', () => {
    expect(isSafeRedirectUrl('http://[::1]:3000/a', { allowedHosts: ['[::1]:3000'] })).toBe(true);
  });

  describe('with requireHttps (the request itself was secure)', () => {
    it.each([
      ['http to the allowed host', 'http://testserver/', false],
      ['a scheme-relative URL (counts as http)', '//testserver/', false],
      ['https to the allowed host', 'https://testserver/', true],
      ['a relative path', '/view/?param=http://example.com', true],
      ['https to another host', 'https://example.com/', false],
    ])('%s: %j → %s', (_label, url, safe) => {
      expect(isSafeRedirectUrl(url, { allowedHosts, requireHttps: true })).toBe(safe);
    });
  });
});
