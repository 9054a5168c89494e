/** The value of app.kubernetes.io/managed-by on everything the library renders. */
export const MANAGED_BY = 'cdk8s-postgres';

/** The recommended app.kubernetes.io labels that identify one component of one instance. */
export interface ComponentLabels {
  /** What runs: `postgresql`, `pgbouncer`, ... */
  readonly name: string;
  /** The resource name the user chose: stable across construct-path changes. */
  readonly instance: string;
  /** The role inside the instance: `primary`, `replica`, `pooler`, ... */
  readonly component: string;
  /** The application this is a part of. */
  readonly partOf: string;
}

/**
 * Labels for a selector. They never include managed-by or user labels, because a StatefulSet's
 * selector is immutable and must survive a change of either.
 */
export function selectorLabels(labels: ComponentLabels, withComponent = true): { [key: string]: string } {
  return {
    'app.kubernetes.io/name': labels.name,
    'app.kubernetes.io/instance': labels.instance,
    ...(withComponent ? { 'app.kubernetes.io/component': labels.component } : {}),
  };
}

/** Labels for metadata: the selector labels plus part-of, managed-by and the user's own. */
export function metadataLabels(labels: ComponentLabels, extra: { [key: string]: string } = {}): { [key: string]: string } {
  return {
    ...extra,
    ...selectorLabels(labels),
    'app.kubernetes.io/part-of': labels.partOf,
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}
