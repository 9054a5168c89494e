import { rmSync } from 'fs';
import { request } from 'https';
import { Chart, Duration, Testing } from 'cdk8s';
import { PostgresStatefulCluster } from '../../lib';
import { FakeKubeApi } from './support/fake-kube-api';
import { statefulSetPod } from './support/kubernetes-dcs';
import { scratchDir } from './support/postgres-bin';
import { TestCa } from './support/test-ca';
import { findObject } from '../support/synth';

interface Answer { readonly status: number; readonly body: any }

/**
 * The fake API's own semantics, which ha-kubernetes.e2e.test.ts relies on to mean anything: it
 * refuses what the rendered Role does not grant, refuses stale writes, and streams watches, as an
 * API server does. Driven here by hand against the HA mode's rendered Role.
 */
describe('FakeKubeApi: RBAC from the rendered Role, resourceVersion conflicts, watches', () => {
  const chart = new Chart(Testing.app(), 'fake', { namespace: 'shop' });
  new PostgresStatefulCluster(chart, 'Db', {
    instances: 2,
    superuserSecret: { secretName: 'db-superuser' },
    replicationSecret: { secretName: 'db-replication' },
    highAvailability: { ttl: Duration.seconds(30), loopWait: Duration.seconds(10), retryTimeout: Duration.seconds(10) },
  });
  const objects = chart.toJson();
  const statefulSet = findObject(objects, 'StatefulSet', 'db');
  let scratch: string;
  let ca: TestCa;
  let api: FakeKubeApi;
  let token: string;

  /** One call as Patroni's client makes it: JSON, the bearer token, the CA verified. */
  function call(method: string, path: string, body?: object, options: { token?: string; contentType?: string } = {}): Promise<Answer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port: api.port, path, method, ca: ca.certificate,
        headers: {
          ...(options.token ?? token ? { authorization: `Bearer ${options.token ?? token}` } : {}),
          ...(text !== undefined ? { 'content-type': options.contentType ?? (method === 'PATCH' ? 'application/strategic-merge-patch+json' : 'application/json') } : {}),
        },
      }, (response) => {
        let data = '';
        response.setEncoding('utf8').on('data', (chunk) => (data += chunk)).on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(data) }));
      });
      req.on('error', reject);
      req.end(text);
    });
  }

  /** Opens a watch and collects its events (type and name) until closed. */
  function watch(path: string): Promise<{ events: string[]; close: () => void }> {
    return new Promise((resolve, reject) => {
      const events: string[] = [];
      const req = request({ host: '127.0.0.1', port: api.port, path, ca: ca.certificate, headers: { authorization: `Bearer ${token}` } }, (response) => {
        let pending = '';
        response.setEncoding('utf8').on('data', (chunk: string) => {
          const lines = (pending + chunk).split('\n');
          pending = lines.pop()!;
          for (const line of lines) {
            const event = JSON.parse(line);
            events.push(`${event.type} ${event.object.metadata.name}`);
          }
        });
        resolve({ events, close: () => req.destroy() });
      });
      req.on('error', (error: any) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
      req.end();
    });
  }

  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
  const configMaps = '/api/v1/namespaces/shop/configmaps';
  const selector = 'labelSelector=app.kubernetes.io%2Fname%3Dpostgresql%2Capp.kubernetes.io%2Finstance%3Ddb%2Ccluster-name%3Ddb';
  const labels = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'db', 'cluster-name': 'db' };

  beforeAll(async () => {
    scratch = scratchDir('cdk8s-postgres-fake-kube-api');
    ca = new TestCa(scratch, 'kube');
    api = await FakeKubeApi.start(ca, objects);
    for (let ordinal = 0; ordinal < 2; ordinal++) api.create('pods', statefulSetPod(statefulSet, ordinal));
    token = api.issueToken('shop', statefulSet.spec.template.spec.serviceAccountName, 'db-0');
  });

  afterAll(async () => {
    await api?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('no token or an unknown one: 401', async () => {
    expect((await call('GET', `${configMaps}?${selector}`, undefined, { token: '' })).status).toBe(401);
    expect((await call('GET', `${configMaps}?${selector}`, undefined, { token: 'forged' })).status).toBe(401);
  });

  test('what the Role does not grant is refused with 403: delete, create of pods, patch of an unnamed ConfigMap or pod, another namespace, another ServiceAccount', async () => {
    await call('POST', configMaps, { metadata: { name: 'other', labels } });
    expect((await call('DELETE', `${configMaps}/db-leader`)).status).toBe(403);
    expect((await call('POST', '/api/v1/namespaces/shop/pods', { metadata: { name: 'intruder' } })).status).toBe(403);
    expect((await call('PATCH', `${configMaps}/other`, { metadata: { annotations: { a: 'b' } } })).status).toBe(403);
    expect((await call('PATCH', '/api/v1/namespaces/shop/pods/db-2', { metadata: { labels: { role: 'primary' } } })).status).toBe(403);
    expect((await call('GET', '/api/v1/namespaces/default/configmaps')).status).toBe(403);
    expect((await call('GET', '/api/v1/namespaces/shop/secrets')).status).toBe(403);
    const stranger = api.issueToken('shop', 'default', 'db-0');
    expect((await call('GET', `${configMaps}?${selector}`, undefined, { token: stranger })).status).toBe(403);
  });

  test('create, then a patch on a stale resourceVersion is a 409; on the current one it applies, null removing a key', async () => {
    const created = await call('POST', configMaps, { metadata: { name: 'db-leader', labels, annotations: { leader: 'db-0', ttl: '30' } } });
    expect(created.status).toBe(201);
    expect((await call('POST', configMaps, { metadata: { name: 'db-leader', labels } })).status).toBe(409);
    const version = created.body.metadata.resourceVersion;
    const renewed = await call('PATCH', `${configMaps}/db-leader`, { metadata: { resourceVersion: version, annotations: { leader: 'db-0', ttl: null } } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.metadata.annotations).toEqual({ leader: 'db-0' });
    expect(Number(renewed.body.metadata.resourceVersion)).toBeGreaterThan(Number(version));
    const stale = await call('PATCH', `${configMaps}/db-leader`, { metadata: { resourceVersion: version, annotations: { leader: 'db-1' } } });
    expect(stale).toMatchObject({ status: 409, body: { kind: 'Status', reason: 'Conflict', code: 409 } });
    expect((await call('GET', `${configMaps}/db-leader`)).body.metadata.annotations.leader).toBe('db-0');
    // A patch that changes nothing keeps the version; a JSON patch is not served.
    const same = await call('PATCH', `${configMaps}/db-leader`, { metadata: { annotations: { leader: 'db-0' } } });
    expect(same.body.metadata.resourceVersion).toBe(renewed.body.metadata.resourceVersion);
    expect((await call('PATCH', `${configMaps}/db-leader`, [{ op: 'remove', path: '/metadata/annotations' }], { contentType: 'application/json-patch+json' })).status)
      .toBe(415);
  });

  test('a watch from a list\'s resourceVersion streams later changes; a label moving a pod out of the selector is DELETED for it', async () => {
    const pods = '/api/v1/namespaces/shop/pods';
    const list = await call('GET', `${pods}?${selector}`);
    expect(list.body.items.map((pod: any) => pod.metadata.name)).toEqual(['db-0', 'db-1']);
    const stream = await watch(`${pods}?${selector}&watch=True&resourceVersion=${list.body.metadata.resourceVersion}`);
    expect((await call('PATCH', `${pods}/db-0`, { metadata: { labels: { role: 'primary' } } })).status).toBe(200);
    api.create('pods', { ...statefulSetPod(statefulSet, 5), metadata: { name: 'elsewhere', namespace: 'shop', labels: { app: 'other' } } });
    await settle();
    expect(stream.events).toEqual(['MODIFIED db-0']);
    const admin = api.get('pods', 'shop', 'db-1');
    api.create('pods', { ...admin, metadata: { ...admin.metadata, name: 'db-9' } });
    await settle();
    expect(stream.events).toEqual(['MODIFIED db-0', 'ADDED db-9']);
    // From version 0: the current objects as ADDED.
    const fresh = await watch(`${pods}?${selector}&watch=true`);
    await settle();
    expect(fresh.events.sort()).toEqual(['ADDED db-0', 'ADDED db-1', 'ADDED db-9']);
    fresh.close();
    expect((await call('PATCH', `${pods}/db-0`, { metadata: { labels: { 'cluster-name': null } } })).status).toBe(200);
    await settle();
    expect(stream.events).toEqual(['MODIFIED db-0', 'ADDED db-9', 'DELETED db-0']);
    stream.close();
  });

  test('the requests are recorded with the verb and the token\'s pod; grants no request used are listed', () => {
    expect(api.requests.find((r) => r.verb === 'patch' && r.resource === 'pods' && r.status === 200)).toMatchObject({ pod: 'db-0', name: 'db-0' });
    expect(api.requests.filter((r) => r.verb === 'watch').length).toBe(2);
    const unused = api.unusedGrants('shop', statefulSet.spec.template.spec.serviceAccountName).map((g) => `${g.verb} ${g.resource}/${g.name}`);
    expect(unused).toContain('patch pods/db-1');
    expect(unused).not.toContain('patch pods/db-0');
    expect(unused).not.toContain('create configmaps/');
  });
});
