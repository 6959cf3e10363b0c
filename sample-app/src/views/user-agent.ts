import Bowser from 'bowser';

/**
 * "Firefox 128 on Android" from a User-Agent header, or `null` when it names no browser known
 * (a script, a made-up header). Every browser claims to be the others (Edge's says Chrome and
 * Safari too), so a maintained parser reads it: bowser (MIT, no dependencies). The system is
 * named without its version: browsers freeze that part (User-Agent reduction), Windows 11 still
 * sends "Windows NT 10.0".
 */
export function describeUserAgent(userAgent: string): string | null {
  if (!userAgent) return null;
  const { browser, os } = Bowser.parse(userAgent);
  if (!browser.name) return null;
  const major = browser.version?.split('.')[0];
  const name = major ? `${browser.name} ${major}` : browser.name;
  return os.name ? `${name} on ${os.name}` : name;
}
