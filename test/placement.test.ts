import {
  BackupRepository, LabelOperator, NodeOperator, Overlays, PgBouncerPooler, PgpoolBalancer, PodPlacement, PodSpread, PostgresStatefulCluster,
} from '../lib';
import { KUBE_VERSIONS, validateManifests } from './support/kube-schema';
import { podTemplatesOf } from './support/pod-security';
import { findObject, synthObjects, testChart } from './support/synth';

const AIRFLOW = { secretName: 'airflow-app' };

/** A cluster with backups, a pooler and a balancer, all with the same placement. */
function stack(placement: PodPlacement | undefined, spread?: PodSpread): any[] {
  const chart = testChart('shop');
  const cluster = new PostgresStatefulCluster(chart, 'Db', {
    superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' }, placement, spread,
    tls: { secretName: 'db-cert' }, backup: { repositories: [BackupRepository.volume()] }, image: 'percona/percona-distribution-postgresql:17.10-1', runAsUser: 26,
    settings: { maxConnections: 200 },
  });
  new PgBouncerPooler(chart, 'Pooler', { backend: cluster, users: [AIRFLOW], placement });
  new PgpoolBalancer(chart, 'Balancer', {
    backend: cluster, users: [{ credentials: AIRFLOW, envPrefix: 'AIRFLOW' }],
    srCheckUser: { secretName: 'pgpool-srcheck' }, placement,
  });
  return synthObjects(chart);
}

const spec = (objects: any[], kind: string, name: string) => {
  const object = findObject(objects, kind, name);
  return (kind === 'CronJob' ? object.spec.jobTemplate.spec.template : object.spec.template).spec;
};
const WORKLOADS: [string, string][] = [['StatefulSet', 'db-primary'], ['StatefulSet', 'db-replica'], ['Deployment', 'pooler'], ['Deployment', 'balancer']];
const ownSelector = (objects: any[], kind: string, name: string) => spec(objects, kind, name).topologySpreadConstraints[0].labelSelector;

describe('placement: affinity and topology spread', () => {
  test('by default the pods spread over nodes only, with no affinity, as before', () => {
    const objects = stack(undefined);
    for (const [kind, name] of WORKLOADS) {
      const pod = spec(objects, kind, name);
      expect(pod.topologySpreadConstraints.map((c: any) => [c.topologyKey, c.whenUnsatisfiable, c.maxSkew]))
        .toEqual([['kubernetes.io/hostname', 'ScheduleAnyway', 1]]);
      expect(pod.affinity).toBeUndefined();
    }
  });

  test('node affinity goes to every pod of the constructs, backup jobs included; pod terms and spreads only to the workloads\' pods', () => {
    const placement: PodPlacement = {
      nodeAffinity: {
        required: [{ matchExpressions: [{ key: 'node.kubernetes.io/instance-type', operator: NodeOperator.IN, values: ['m6i.xlarge', 'm6i.2xlarge'] }] }],
        preferred: [{ weight: 50, matchExpressions: [{ key: 'example.com/cpu-generation', operator: NodeOperator.GT, values: ['5'] }] }],
      },
      podAntiAffinity: {
        preferred: [{ weight: 100, topologyKey: 'kubernetes.io/hostname', matchLabels: { 'app.kubernetes.io/name': 'kafka' } }],
      },
      podAffinity: {
        required: [{
          topologyKey: 'topology.kubernetes.io/zone', namespaces: ['apps'],
          matchExpressions: [{ key: 'app', operator: LabelOperator.IN, values: ['airflow'] }, { key: 'canary', operator: LabelOperator.DOES_NOT_EXIST }],
        }],
      },
      zoneSpread: PodSpread.PREFERRED,
      topologySpread: [{ topologyKey: 'example.com/rack', maxSkew: 2, whenUnsatisfiable: PodSpread.REQUIRED, minDomains: 3 }],
    };
    const objects = stack(placement);
    const nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'node.kubernetes.io/instance-type', operator: 'In', values: ['m6i.xlarge', 'm6i.2xlarge'] }] }] },
      preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, preference: { matchExpressions: [{ key: 'example.com/cpu-generation', operator: 'Gt', values: ['5'] }] } }],
    };
    for (const [kind, name] of WORKLOADS) {
      const pod = spec(objects, kind, name);
      const own = ownSelector(objects, kind, name);
      expect(pod.affinity).toEqual({
        nodeAffinity,
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [{
            labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['airflow'] }, { key: 'canary', operator: 'DoesNotExist' }] },
            namespaces: ['apps'], topologyKey: 'topology.kubernetes.io/zone',
          }],
        },
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [{
            weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'kafka' } }, topologyKey: 'kubernetes.io/hostname' },
          }],
        },
      });
      expect(pod.topologySpreadConstraints).toEqual([
        { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: own },
        { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: own },
        { maxSkew: 2, topologyKey: 'example.com/rack', whenUnsatisfiable: 'DoNotSchedule', minDomains: 3, labelSelector: own },
      ]);
    }
    const backupPod = spec(objects, 'CronJob', 'db-backup-repo1-full');
    // The job keeps its own term (the repository host's node), and none of the workloads'.
    expect(backupPod.affinity.nodeAffinity).toEqual(nodeAffinity);
    expect(backupPod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.map((t: any) => t.labelSelector.matchLabels['app.kubernetes.io/name']))
      .toEqual(['pgbackrest']);
    expect(backupPod.affinity.podAntiAffinity).toBeUndefined();
    expect(backupPod.topologySpreadConstraints).toBeUndefined();
    for (const { name, template } of podTemplatesOf(objects)) {
      expect({ name, nodeAffinity: template.spec.affinity?.nodeAffinity }).toEqual({ name, nodeAffinity });
    }
    for (const version of KUBE_VERSIONS) expect(validateManifests(objects, version)).toEqual([]);
  });

  test('a spread with its own labels counts those pods; REQUIRED zone spread', () => {
    const objects = stack({ zoneSpread: PodSpread.REQUIRED, topologySpread: [{ topologyKey: 'topology.kubernetes.io/region', matchLabels: { tier: 'db' } }] });
    const constraints = spec(objects, 'StatefulSet', 'db-primary').topologySpreadConstraints;
    expect(constraints.slice(1)).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: ownSelector(objects, 'StatefulSet', 'db-primary') },
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/region', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { tier: 'db' } } },
    ]);
  });

  test('an environment\'s overlay adds to the base placement key by key; its lists replace the base\'s', () => {
    const base = {
      superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' },
      placement: { nodeSelector: { pool: 'db' }, topologySpread: [{ topologyKey: 'example.com/rack' }] },
    };
    const props = Overlays.cluster(base, [{
      placement: { zoneSpread: PodSpread.PREFERRED, topologySpread: [{ topologyKey: 'topology.kubernetes.io/region' }] },
    }]);
    expect(props.placement).toEqual({ nodeSelector: { pool: 'db' }, zoneSpread: PodSpread.PREFERRED, topologySpread: [{ topologyKey: 'topology.kubernetes.io/region' }] });
  });

  const cluster = (placement: PodPlacement) => () => new PostgresStatefulCluster(testChart(), 'Db', {
    superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' }, placement,
  });
  const term = { topologyKey: 'kubernetes.io/hostname', matchLabels: { app: 'kafka' } };
  test.each<[string, PodPlacement, string]>([
    ['a spread without topologyKey', { topologySpread: [{ topologyKey: '' }] },
      'Db: placement.topologySpread[0].topologyKey "" is required: it names the node label whose values are the domains; set it, such as'],
    ['a topologyKey that is no label key', { topologySpread: [{ topologyKey: 'zone!' }] }, 'Db: placement.topologySpread[0].topologyKey "zone!" is not a label key'],
    ['maxSkew 0', { topologySpread: [{ topologyKey: 'example.com/rack', maxSkew: 0 }] },
      'Db: placement.topologySpread[0].maxSkew 0 must be a whole number 1 or more'],
    ['minDomains with PREFERRED', { topologySpread: [{ topologyKey: 'example.com/rack', minDomains: 2 }] },
      'Db: placement.topologySpread[0].minDomains 2 applies only to constraints the scheduler enforces; set whenUnsatisfiable: PodSpread.REQUIRED, or drop minDomains'],
    ['minDomains 0', { topologySpread: [{ topologyKey: 'example.com/rack', minDomains: 0, whenUnsatisfiable: PodSpread.REQUIRED }] },
      'Db: placement.topologySpread[0].minDomains 0 must be a whole number 1 or more'],
    ['an unknown whenUnsatisfiable', { topologySpread: [{ topologyKey: 'example.com/rack', whenUnsatisfiable: 'Sometimes' as PodSpread }] },
      'Db: placement.topologySpread[0].whenUnsatisfiable "Sometimes" is not a PodSpread; use one of PodSpread.PREFERRED ("ScheduleAnyway"), PodSpread.REQUIRED ("DoNotSchedule")'],
    ['two spreads with the same key and action', { topologySpread: [{ topologyKey: 'example.com/rack' }, { topologyKey: 'example.com/rack', maxSkew: 2 }] },
      'Db: placement.topologySpread[1].topologyKey "example.com/rack" repeats an earlier constraint with ScheduleAnyway, which the API server refuses; merge the two constraints'],
    ['a spread over nodes', { topologySpread: [{ topologyKey: 'kubernetes.io/hostname' }] },
      'Db: placement.topologySpread[0].topologyKey "kubernetes.io/hostname" is the construct\'s own spread over nodes; use the construct\'s spread prop'],
    ['a spread over zones beside zoneSpread', { zoneSpread: PodSpread.PREFERRED, topologySpread: [{ topologyKey: 'topology.kubernetes.io/zone' }] },
      'Db: placement.topologySpread[0].topologyKey "topology.kubernetes.io/zone" is already spread over by placement.zoneSpread; drop one of the two'],
    ['a spread counting every pod', { topologySpread: [{ topologyKey: 'example.com/rack', matchLabels: {} }] },
      'Db: placement.topologySpread[0].matchLabels {} counts every pod of the namespace'],
    ['a bad zoneSpread', { zoneSpread: 'zonal' as PodSpread }, 'Db: placement.zoneSpread "zonal" is not a PodSpread'],
    ['a weight of 0', { podAntiAffinity: { preferred: [{ ...term, weight: 0 }] } },
      'Db: placement.podAntiAffinity.preferred[0].weight 0 must be a whole number from 1 to 100'],
    ['a weight of 101', { nodeAffinity: { preferred: [{ weight: 101, matchExpressions: [{ key: 'a', operator: NodeOperator.EXISTS }] }] } },
      'Db: placement.nodeAffinity.preferred[0].weight 101 must be a whole number from 1 to 100'],
    ['a pod term without topologyKey', { podAffinity: { required: [{ ...term, topologyKey: '' }] } },
      'Db: placement.podAffinity.required[0].topologyKey "" is required'],
    ['a pod term selecting no pod', { podAffinity: { required: [{ topologyKey: 'kubernetes.io/hostname' }] } },
      'selects no pod: a term needs labels to match; set matchLabels'],
    ['IN without values', { podAffinity: { required: [{ topologyKey: 'kubernetes.io/hostname', matchExpressions: [{ key: 'app', operator: LabelOperator.IN }] }] } },
      'Db: placement.podAffinity.required[0].matchExpressions[0].values [] does not fit operator In, which takes one or more values'],
    ['EXISTS with values', { podAntiAffinity: { required: [{ topologyKey: 'kubernetes.io/hostname', matchExpressions: [{ key: 'app', operator: LabelOperator.EXISTS, values: ['x'] }] }] } },
      'Db: placement.podAntiAffinity.required[0].matchExpressions[0].values ["x"] does not fit operator Exists, which takes no values'],
    ['an unknown operator', { podAntiAffinity: { required: [{ topologyKey: 'kubernetes.io/hostname', matchExpressions: [{ key: 'app', operator: 'Gt' as LabelOperator }] }] } },
      'Db: placement.podAntiAffinity.required[0].matchExpressions[0].operator "Gt" is not a LabelOperator'],
    ['a bad label value', { podAffinity: { required: [{ topologyKey: 'kubernetes.io/hostname', matchLabels: { app: 'no spaces' } }] } },
      'Db: placement.podAffinity.required[0].matchLabels.app "no spaces" is not a label value'],
    ['a bad namespace', { podAffinity: { required: [{ ...term, namespaces: ['Apps'] }] } }, 'Db: placement.podAffinity.required[0].namespaces[0] "Apps"'],
    ['GT with two values', { nodeAffinity: { required: [{ matchExpressions: [{ key: 'gen', operator: NodeOperator.GT, values: ['1', '2'] }] }] } },
      'Db: placement.nodeAffinity.required[0].matchExpressions[0].values ["1","2"] does not fit operator Gt, which takes exactly one integer value'],
    ['LT with a word', { nodeAffinity: { required: [{ matchExpressions: [{ key: 'gen', operator: NodeOperator.LT, values: ['five'] }] }] } },
      'does not fit operator Lt, which takes exactly one integer value'],
    ['a node term without expressions', { nodeAffinity: { required: [{ matchExpressions: [] }] } },
      'Db: placement.nodeAffinity.required[0].matchExpressions [] is empty: a term without requirements matches no node; list at least one requirement'],
    ['required node affinity without terms', { nodeAffinity: { required: [] } },
      'Db: placement.nodeAffinity.required [] lists no term, which no node matches; list at least one term, or drop required'],
    ['a bad node label key', { nodeAffinity: { required: [{ matchExpressions: [{ key: '-bad', operator: NodeOperator.EXISTS }] }] } },
      'Db: placement.nodeAffinity.required[0].matchExpressions[0].key "-bad" is not a label key'],
  ])('refuses %s', (_what, placement, message) => {
    expect(cluster(placement)).toThrow(message);
  });
});
