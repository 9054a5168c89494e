import { Acknowledgement, ChangeImpactFinding } from './report-types';

/** The exit code of each gate, highest priority first: the first unacknowledged one decides. */
export const EXIT_CODES: ReadonlyArray<{ gate: Acknowledgement; code: number }> = [
  { gate: Acknowledgement.TOPOLOGY_CHANGE, code: 5 },
  { gate: Acknowledgement.REFUSED_APPLY, code: 4 },
  { gate: Acknowledgement.PRIMARY_RESTART, code: 3 },
  { gate: Acknowledgement.NEW_SECRETS, code: 2 },
];

/** The CLI's code when it cannot run: a bad argument or unreadable manifests. */
export const USAGE_EXIT_CODE = 1;

/** 0 when every gated finding is acknowledged, else the code of the highest-priority one left. */
export function exitCodeOf(findings: ChangeImpactFinding[], allow: Acknowledgement[]): number {
  const open = new Set(findings.map((f) => f.gate).filter((gate) => gate !== undefined && !allow.includes(gate)));
  return EXIT_CODES.find(({ gate }) => open.has(gate))?.code ?? 0;
}
