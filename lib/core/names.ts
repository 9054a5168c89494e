import { IConstruct } from 'constructs';
import { propError } from './errors';

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Kubernetes appends `-<controller-revision-hash>` (up to 11 characters) to a StatefulSet's
 * name for a pod label whose value may not exceed 63 characters.
 */
export const MAX_STATEFUL_SET_NAME_LENGTH = 52;

/** The construct id as a DNS-1123 name: `MainDb` -> `main-db`. Stable across path changes. */
export function defaultResourceName(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Throws unless `name` is a DNS-1123 label of at most `maxLength` characters. */
export function validateDnsLabel(scope: IConstruct, prop: string, name: string, maxLength = 63, why = ''): void {
  if (!DNS_1123_LABEL.test(name)) {
    throw propError(scope, prop, name, 'is not a DNS-1123 label',
      'use lower-case letters, digits and "-", starting and ending with a letter or digit');
  }
  if (name.length > maxLength) {
    throw propError(scope, prop, name, `is ${name.length} characters long, more than the ${maxLength} allowed${why}`,
      `use a name of at most ${maxLength} characters`);
  }
}

/** The DNS name of a Service: short within the namespace, `<name>.<namespace>.svc` across. */
export function serviceHost(serviceName: string, namespace?: string): string {
  return namespace ? `${serviceName}.${namespace}.svc` : serviceName;
}
