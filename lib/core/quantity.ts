import { IConstruct } from 'constructs';
import { propError } from './errors';

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/;

const MULTIPLIERS: { [suffix: string]: number } = {
  '': 1, 'm': 1e-3,
  'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15, 'E': 1e18,
  'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40, 'Pi': 2 ** 50, 'Ei': 2 ** 60,
};

/**
 * The value of a Kubernetes quantity such as `512Mi`, `1.5Gi` or `250m` in base units.
 * Throws a prop error for anything the API server would reject (or that we cannot size from).
 */
export function parseQuantity(scope: IConstruct, prop: string, value: string): number {
  const match = QUANTITY.exec(value);
  if (!match) {
    throw propError(scope, prop, value, 'is not a Kubernetes quantity',
      'write a number with an optional suffix, such as "512Mi", "2Gi" or "500m"');
  }
  const amount = Number(match[1]) * MULTIPLIERS[match[2] ?? ''];
  if (amount <= 0) {
    throw propError(scope, prop, value, 'must be greater than zero', 'give a positive quantity');
  }
  return amount;
}

/** Bytes as a PostgreSQL memory setting in whole kB, MB or GB (its units are powers of 1024). */
export function postgresMemory(bytes: number): string {
  const kb = Math.max(1, Math.floor(bytes / 1024));
  if (kb % (1024 * 1024) === 0) return `${kb / (1024 * 1024)}GB`;
  if (kb % 1024 === 0) return `${kb / 1024}MB`;
  return `${kb}kB`;
}
