/**
 * Rewrites pod paths to local ones in one pass: each root matches only as a whole path
 * component (`/config` in `/config/tls`, not in `/etc/x/config.sh` or an already rewritten
 * path), longest first, so one root being a prefix of another does no harm.
 */
export function localizePaths(value: string, roots: { [podPath: string]: string }): string {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const podPaths = Object.keys(roots).sort((a, b) => b.length - a.length);
  const pattern = new RegExp(`(?<![\\w.-])(${podPaths.map(escape).join('|')})(?![\\w.-])`, 'g');
  return value.replace(pattern, (podPath) => roots[podPath]);
}
