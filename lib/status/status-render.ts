import { HealthStatus, StatusFinding } from './status-types';

/** Statuses from best to worst with their exit codes; the worst finding decides. */
export const STATUS_EXIT_CODES: ReadonlyArray<{ status: HealthStatus; code: number }> = [
  { status: HealthStatus.OK, code: 0 },
  { status: HealthStatus.SKIPPED, code: 0 },
  { status: HealthStatus.WARNING, code: 2 },
  { status: HealthStatus.CRITICAL, code: 3 },
  { status: HealthStatus.UNREACHABLE, code: 4 },
];

/** The CLI's code when it cannot run: a bad argument, unreadable manifests or credentials. */
export const STATUS_USAGE_EXIT_CODE = 1;

const rank = (status: HealthStatus) => STATUS_EXIT_CODES.findIndex((entry) => entry.status === status);

/** The worst status of the findings (SKIPPED counts as OK). */
export function worstStatus(findings: StatusFinding[]): HealthStatus {
  const worst = findings.reduce((a, f) => (rank(f.status) > rank(a) ? f.status : a), HealthStatus.OK);
  return worst === HealthStatus.SKIPPED ? HealthStatus.OK : worst;
}

/** The exit code of a status: 0, 2, 3 or 4. */
export function exitCodeOf(status: HealthStatus): number {
  return STATUS_EXIT_CODES[rank(status)].code;
}

/** The findings as aligned columns, then one summary line. */
export function statusTable(findings: StatusFinding[]): string {
  const header = ['STATUS', 'COMPONENT', 'TARGET', 'CHECK', 'DETAIL'];
  const rows = findings.map((f) => [f.status.toUpperCase(), f.component, f.target, f.check, f.message]);
  const widths = header.slice(0, -1).map((_, column) => Math.max(...[header, ...rows].map((row) => row[column].length)));
  const line = (row: string[]) => row.map((cell, column) => (column < widths.length ? cell.padEnd(widths[column]) : cell)).join('  ');
  const status = worstStatus(findings);
  const counts = STATUS_EXIT_CODES.map(({ status: s }) => [s, findings.filter((f) => f.status === s).length] as const)
    .filter(([, count]) => count > 0).map(([s, count]) => `${count} ${s}`).join(', ');
  return [line(header), ...rows.map(line), '', `${status.toUpperCase()} (exit code ${exitCodeOf(status)}): ${findings.length} checks, ${counts}`].join('\n');
}

/** The report as JSON: status, exit code, findings. */
export function statusJson(findings: StatusFinding[]): string {
  const status = worstStatus(findings);
  return JSON.stringify({ status, exitCode: exitCodeOf(status), findings }, null, 2);
}
