import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium (no browser download), driven by playwright-core. Without it the browser
 * tests are listed as NOT RUN, loudly, never passed silently.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromiumFound = existsSync(CHROMIUM);
if (!chromiumFound) {
  console.warn(
    `browser tests NOT RUN: chromium not found at ${CHROMIUM}. Install Debian's chromium ` +
      '(apt-get install chromium) or set CHROMIUM_PATH; .ci/run does.',
  );
}

/** Debian's Chromium, headless, without a sandbox or background traffic; `args` adds flags. */
export function launchChromium(args: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...args],
  });
}
