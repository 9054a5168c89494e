import { isIPv4, isIPv6 } from 'net';
import { IConstruct } from 'constructs';
import { propError } from './errors';

/** Names of Services (and of what shares a Service's name) start with a letter: DNS-1035. */
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Kubernetes appends `-<controller-revision-hash>` (up to 11 characters) to a StatefulSet's
 * name for a pod label whose value may not exceed 63 characters.
 */
export const MAX_STATEFUL_SET_NAME_LENGTH = 52;

/** The construct id as a DNS name: `MainDb` -> `main-db`. Stable across path changes. */
export function defaultResourceName(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * Throws unless `name` can name a Service: a DNS-1035 label of at most `maxLength` characters.
 * `why` explains a limit below 63.
 */
export function validateServiceName(scope: IConstruct, prop: string, name: string, maxLength = 63, why = ''): void {
  if (!DNS_1035_LABEL.test(name)) {
    throw propError(scope, prop, name, 'is not a DNS-1035 label',
      'use lower-case letters, digits and "-", starting with a letter and ending with a letter or digit');
  }
  validateLength(scope, prop, name, maxLength, why);
}

/** Throws unless `name` is a DNS-1123 label (namespaces). */
export function validateDnsLabel(scope: IConstruct, prop: string, name: string): void {
  if (typeof name !== 'string' || !DNS_1123_LABEL.test(name)) {
    throw propError(scope, prop, name, 'is not a DNS-1123 label',
      'use lower-case letters, digits and "-", starting and ending with a letter or digit');
  }
  validateLength(scope, prop, name, 63);
}

/** Throws unless `name` is a DNS-1123 subdomain, the name of an existing `kind` (Secret, StorageClass). */
export function validateDnsSubdomain(scope: IConstruct, prop: string, name: string, kind: string): void {
  if (typeof name !== 'string' || !DNS_1123_SUBDOMAIN.test(name)) {
    throw propError(scope, prop, name, `is not a valid ${kind} name`,
      `use the name of an existing ${kind}: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit`);
  }
  validateLength(scope, prop, name, 253);
}

function validateLength(scope: IConstruct, prop: string, name: string, maxLength: number, why = ''): void {
  if (name.length > maxLength) {
    throw propError(scope, prop, name, `is ${name.length} characters long, more than the ${maxLength} allowed${why}`,
      `use a name of at most ${maxLength} characters`);
  }
}

/** Throws unless every key and value is one the API server accepts as a label. */
export function validateLabels(scope: IConstruct, prop: string, labels: { [key: string]: string }): void {
  for (const [key, value] of Object.entries(labels)) {
    validateMapKey(scope, `${prop} key`, key);
    validateLabelValue(scope, `${prop}.${key}`, value);
  }
}

/** Throws unless `key` is a label or annotation key: an optional DNS prefix and "/", then a name. */
export function validateQualifiedName(scope: IConstruct, prop: string, key: string): void {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = key.slice(slash + 1);
  const prefixOk = prefix === undefined || (DNS_1123_SUBDOMAIN.test(prefix) && prefix.length <= 253);
  if (!prefixOk || !LABEL_NAME.test(name) || name.length > 63) {
    throw propError(scope, prop, key, 'is not a label key',
      'use an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit');
  }
}

/** Throws unless `key` can be a key of a label or annotation map that cdk8s renders. */
export function validateMapKey(scope: IConstruct, prop: string, key: string): void {
  validateQualifiedName(scope, prop, key);
  if (key === 'constructor') {
    throw propError(scope, prop, key, 'cannot be rendered: cdk8s takes a map with this key for a class instance',
      'use a prefixed key such as "example.com/constructor"');
  }
}

/** Throws unless `value` is a label value. */
export function validateLabelValue(scope: IConstruct, prop: string, value: string): void {
  if (typeof value !== 'string' || !LABEL_VALUE.test(value) || value.length > 63) {
    throw propError(scope, prop, value, 'is not a label value',
      'use at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit');
  }
}

/** Throws unless `cidr` is an IPv4 or IPv6 network in CIDR notation. */
export function validateCidr(scope: IConstruct, prop: string, cidr: string): void {
  const [address, prefix, extra] = cidr.split('/');
  if (address.includes('%')) {
    throw propError(scope, prop, cidr, 'has a zone id, which pg_hba.conf and NetworkPolicies do not accept (PostgreSQL would not start)',
      'drop the "%..." part: write networks such as "fe80::/10"');
  }
  const bits = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
  if (extra !== undefined || bits === 0 || !/^[0-9]{1,3}$/.test(prefix ?? '') || Number(prefix) > bits) {
    throw propError(scope, prop, cidr, 'is not a CIDR', 'write networks such as "10.0.0.0/8" or "fd00::/8"');
  }
}

/** The DNS name of a Service: short within the namespace, `<name>.<namespace>.svc` across. */
export function serviceHost(serviceName: string, namespace?: string): string {
  return namespace ? `${serviceName}.${namespace}.svc` : serviceName;
}

/** A regular expression matching the names of a Deployment's pods: `<name>-<replicaset hash>-<suffix>`. */
export function deploymentPodPattern(deploymentName: string): string {
  return `${deploymentName}-[a-z0-9]+-[a-z0-9]+`;
}
