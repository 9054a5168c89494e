/** ChartNamespace: the chart's Namespace, with Pod Security admission labels, first in the YAML. */
import { Chart, Testing } from 'cdk8s';
import { ChartNamespace, PodSecurityLevel, PostgresStatefulCluster } from '../lib';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';

const SECRETS = { superuserSecret: { secretName: 'db-superuser' }, replicationSecret: { secretName: 'db-replication' } };

function chartWith(namespace: string | undefined, props = {}): any[] {
  const chart = new Chart(Testing.app(), 'test', { namespace });
  new PostgresStatefulCluster(chart, 'Db', SECRETS);
  new ChartNamespace(chart, 'Namespace', props);
  return Testing.synth(chart);
}

test('is the chart\'s namespace, cluster-scoped, restricted, and first in the YAML although created last', () => {
  const objects = chartWith('orders');
  expect(objects[0]).toEqual({
    apiVersion: 'v1', kind: 'Namespace',
    metadata: {
      name: 'orders',
      labels: {
        'pod-security.kubernetes.io/audit': 'restricted',
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/warn': 'restricted',
      },
    },
  });
  expect(objects.filter((o) => o.kind === 'Namespace')).toHaveLength(1);
  expect(objects.slice(1).every((o) => o.metadata.namespace === 'orders')).toBe(true);
});

test('takes another Pod Security level, labels and annotations', () => {
  const [namespace] = chartWith('shared', { podSecurity: PodSecurityLevel.BASELINE, labels: { team: 'data' }, annotations: { owner: 'data-oncall' } });
  expect(namespace.metadata).toEqual({
    name: 'shared',
    labels: {
      'team': 'data',
      'pod-security.kubernetes.io/audit': 'baseline',
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/warn': 'baseline',
    },
    annotations: { owner: 'data-oncall' },
  });
});

test.each([
  ['a chart without a namespace', undefined, {}, 'chart namespace', '(unset)', /give the chart a namespace/],
  ['a Pod Security label among the labels', 'orders', { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } },
    'labels key', '"pod-security.kubernetes.io/enforce"', /set podSecurity/],
  ['an unknown level', 'orders', { podSecurity: 'strict' }, 'podSecurity', '"strict"', /PodSecurityLevel.RESTRICTED/],
])('refuses %s', (_what, namespace, props, prop, value, fix) => {
  const message = thrownMessage(() => chartWith(namespace, props), prop);
  expectPropErrorMessage(message, 'test/Namespace', { prop, value, fix });
});
