/** `NODE_ENV=production`: secure cookies by default, strict start-up checks, no reset links in logs. */
export function isProduction(): boolean {
  return process.env.NODE_ENV === 'production';
}
