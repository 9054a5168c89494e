/** Keys sorted, so equal objects serialize equally whatever the order their YAML had. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as any)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function isMap(value: unknown): value is { [key: string]: unknown } {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The paths where two values differ, descending into maps (not lists) at most `depth` levels:
 * `spec.replicas`, `data.postgresql.conf`, `spec.template`.
 */
export function changedPaths(before: unknown, after: unknown, depth: number, prefix = ''): string[] {
  if (sameValue(before, after)) return [];
  if (depth <= 0 || !isMap(before) || !isMap(after)) return [prefix || '(root)'];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((key) => changedPaths(before[key], after[key], depth - 1, prefix ? `${prefix}.${key}` : key));
}

/** The value at a dotted path (keys with dots are not addressable: the callers do not need them). */
export function valueAt(object: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((value, key) => (isMap(value) ? value[key] : undefined), object);
}
