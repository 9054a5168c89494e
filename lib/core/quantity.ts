import { IConstruct } from 'constructs';
import { propError } from './errors';

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/;

/** Decimal suffixes as powers of ten, binary ones as multipliers. */
const DECIMAL_EXPONENTS: { [suffix: string]: number } = { '': 0, 'm': -3, 'k': 3, 'M': 6, 'G': 9, 'T': 12, 'P': 15, 'E': 18 };
const BINARY_MULTIPLIERS: { [suffix: string]: number } = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/**
 * The value of a Kubernetes quantity such as `512Mi`, `1.5Gi` or `250m` in base units.
 * Throws a prop error for anything the API server would reject (or that we cannot size from).
 */
export function parseQuantity(scope: IConstruct, prop: string, value: string): number {
  const amount = quantityValue(value);
  if (amount === undefined) {
    throw propError(scope, prop, value, 'is not a Kubernetes quantity',
      'write a number with an optional suffix, such as "512Mi", "2Gi" or "500m"');
  }
  if (amount <= 0) {
    throw propError(scope, prop, value, 'must be greater than zero', 'give a positive quantity');
  }
  return amount;
}

/** The value of a quantity in base units, or undefined when it is not one (for reading manifests). */
export function quantityValue(value: string): number | undefined {
  const match = QUANTITY.exec(value);
  if (!match) return undefined;
  // The digits as a whole number and one rounding at the end, so that equal quantities written
  // differently ("700m", "0.7") give the same number: 700 * 1e-3 would not.
  const [whole, fraction = ''] = match[1].split('.');
  const digits = Number(whole + fraction);
  const suffix = match[2] ?? '';
  return suffix in BINARY_MULTIPLIERS
    ? (digits * BINARY_MULTIPLIERS[suffix]) / 10 ** fraction.length
    : scaleByPowerOfTen(digits, DECIMAL_EXPONENTS[suffix] - fraction.length);
}

function scaleByPowerOfTen(value: number, exponent: number): number {
  return exponent >= 0 ? value * 10 ** exponent : value / 10 ** -exponent;
}

/** Bytes as a PostgreSQL memory setting in whole kB, MB or GB (its units are powers of 1024). */
export function postgresMemory(bytes: number): string {
  const kb = Math.max(1, Math.floor(bytes / 1024));
  if (kb % (1024 * 1024) === 0) return `${kb / (1024 * 1024)}GB`;
  if (kb % 1024 === 0) return `${kb / 1024}MB`;
  return `${kb}kB`;
}
