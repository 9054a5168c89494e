import { Chart, Testing } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { PostgresStatefulCluster, PostgresTesting } from '../lib';

const cluster = (chart: Chart, maxConnections = 100) => new PostgresStatefulCluster(chart, 'Db', {
  superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' }, settings: { maxConnections },
});

describe('PostgresTesting, the helpers for users\' own tests', () => {
  test('synth gives the chart\'s objects and findObject/findObjects pick them out', () => {
    const chart = new Chart(Testing.app(), 'orders', { namespace: 'orders' });
    cluster(chart);
    const objects = PostgresTesting.synth(chart);
    expect(PostgresTesting.findObject(objects, 'StatefulSet', 'db-primary').spec.replicas).toBe(1);
    expect(PostgresTesting.findObjects(objects, 'Service').map((s) => s.metadata.name).sort()).toEqual(['db-headless', 'db-ro', 'db-rw']);
    expect(() => PostgresTesting.findObject(objects, 'Deployment', 'db')).toThrow(/no Deployment\/db among: .*StatefulSet\/db-primary/);
  });

  test('synth runs the constructs\' validations as cdk8s synth does', () => {
    const chart = new Chart(Testing.app(), 'orders');
    const db = cluster(chart, 10);
    db.addConnectionDemand({ consumer: 'batch', primary: 20, replica: 0 });
    expect(() => PostgresTesting.synth(chart)).toThrow(/orders\/Db: settings.maxConnections 10 leaves 7 connections/);
  });

  test('synthYaml is one object per document, in synthesis order, apiVersion/kind/metadata first and every nested map sorted', () => {
    const chart = new Chart(Testing.app(), 'orders');
    cluster(chart);
    const yaml = PostgresTesting.synthYaml(chart);
    const documents = parseAllDocuments(yaml).map((d) => d.toJS());
    expect(documents).toEqual(PostgresTesting.synth(chart));
    for (const document of documents) expect(Object.keys(document).slice(0, 3)).toEqual(['apiVersion', 'kind', 'metadata']);
    const unsorted: string[] = [];
    const visit = (value: any, at: string) => {
      if (value === null || typeof value !== 'object') return;
      const keys = Array.isArray(value) ? [] : Object.keys(value);
      if (keys.join() !== [...keys].sort().join()) unsorted.push(at);
      Object.entries(value).forEach(([key, child]) => visit(child, `${at}/${key}`));
    };
    documents.forEach((document) => Object.entries(document).forEach(([key, child]) => visit(child, `${document.kind}/${key}`)));
    expect(unsorted).toEqual([]);
    expect(documents.some((document) => document.kind === 'StatefulSet')).toBe(true);
  });
});
