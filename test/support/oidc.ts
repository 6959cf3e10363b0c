/**
 * Driving an OpenID Connect provider's pages over HTTP (the sample's demo provider: its login
 * page, then back to the relying party), as a browser would.
 */
/** A browser at the provider: follows its redirects, keeps its cookies, stops at the way back to the app. */
export async function signInAtProvider(authorizationUrl: string, login: string, password: string, callback: string): Promise<URL> {
  const cookies = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}) => {
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  };
  let response = await send(authorizationUrl);
  let location = new URL(response.headers.get('location')!, authorizationUrl);
  // Through any provider that sends the browser on to another (as a mix-up attacker's does).
  for (let hops = 0; hops < 3 && !location.pathname.startsWith('/interaction/'); hops++) {
    response = await send(location.href);
    location = new URL(response.headers.get('location')!, location);
  }
  if (!location.pathname.startsWith('/interaction/')) throw new Error(`The provider did not show its login page: ${location.href}`);
  const page = await send(location.href);
  if (!(await page.text()).includes('Demo identity provider')) throw new Error('Not the demo provider’s login page.');
  response = await send(location.href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login, password }).toString(),
  });
  for (let hops = 0; hops < 5; hops++) {
    location = new URL(response.headers.get('location')!, location);
    if (location.href.startsWith(callback)) return location;
    response = await send(location.href);
  }
  throw new Error('The provider never sent the browser back.');
}

