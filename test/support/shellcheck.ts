import { spawnSync } from 'child_process';

/** shellcheck's findings on a script, for the shell its shebang names (empty when clean); throws when shellcheck is missing. */
export function shellcheck(script: string): string {
  const result = spawnSync('shellcheck', ['--severity=style', '--format=gcc', '-'], { input: script, encoding: 'utf8' });
  if (result.error) throw new Error(`shellcheck is not installed (apt-get install shellcheck): ${result.error.message}`);
  return result.stdout;
}
