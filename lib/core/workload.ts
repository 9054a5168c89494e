import { Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import { k8s } from './kube';
import { ComponentLabels, metadataLabels, selectorLabels } from './labels';
import { annotationsField, UserMetadata } from './user-metadata';

/** Metadata of an object of the component: its name, the chart's namespace and the labels. */
export function objectMeta(scope: IConstruct, name: string, labels: ComponentLabels, user: UserMetadata): k8s.ObjectMeta {
  const namespace = Chart.of(scope).namespace;
  return { name, ...(namespace ? { namespace } : {}), labels: metadataLabels(labels, user.labels), ...annotationsField(user.annotations) };
}

/** A ServiceAccount that mounts no API token: none of the library's pods talks to the API server. */
export function tokenlessServiceAccount(scope: IConstruct, name: string, labels: ComponentLabels, user: UserMetadata): void {
  new k8s.KubeServiceAccount(scope, 'ServiceAccount', {
    metadata: objectMeta(scope, name, labels, user),
    automountServiceAccountToken: false,
  });
}

/** At most one of the pods the labels select may be evicted at a time. */
export function oneAtATimeDisruptionBudget(scope: IConstruct, name: string, labels: ComponentLabels,
  user: UserMetadata, withComponent: boolean): void {
  new k8s.KubePodDisruptionBudget(scope, 'DisruptionBudget', {
    metadata: objectMeta(scope, name, labels, user),
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorLabels(labels, withComponent) } },
  });
}
