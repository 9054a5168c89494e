/**
 * A string as an SQL literal, for names checked at synth that the rendered SQL embeds (a DO
 * block's body cannot take psql variables). Standard-conforming strings, PostgreSQL's default
 * since 9.1, read backslashes as they are: only quotes are doubled.
 */
export function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A PL/pgSQL block run as a DO statement; the body is dollar-quoted with a tag the body cannot hold. */
export function doBlock(lines: readonly string[]): string {
  const body = lines.join('\n');
  if (body.includes('$reconcile$')) throw new Error('internal error: a DO block holds its own quote tag');
  return `DO $reconcile$\n${body}\n$reconcile$;`;
}

/** A name as a quoted SQL identifier, for names checked at synth: a keyword such as `user` stays a name. */
export function sqlIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
