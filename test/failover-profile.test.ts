import { Duration } from 'cdk8s';
import { parse } from 'yaml';
import { FailoverProfile, HighAvailability, PostgresStatefulCluster } from '../lib';
import { validatePatroniConfig } from './support/patroni-pod';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { findObject, synthObjects, testChart } from './support/synth';
import { FAILOVER_TIMINGS } from '../lib/cluster/failover-profile';

const SECRETS = { superuserSecret: { secretName: 'pg-superuser' }, replicationSecret: { secretName: 'pg-replication' } };
const SECRET_VALUES = {
  'pg-superuser': { username: 'postgres', password: 'superuser-secret' },
  'pg-replication': { username: 'replicator', password: 'replication-secret' },
  'db-patroni-api': { username: 'patroni', password: 'api-secret' },
};

function synth(highAvailability: HighAvailability): any[] {
  const chart = testChart('shop');
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, instances: 3, highAvailability });
  return synthObjects(chart);
}
const dcs = (objects: any[]) => parse(findObject(objects, 'ConfigMap', 'db-patroni').data['patroni.yml'], { version: '1.1' }).bootstrap.dcs;
const server = (objects: any[]) => findObject(objects, 'StatefulSet', 'db').spec.template.spec.containers.find((c: any) => c.name === 'postgres');
const timing = ({ periodSeconds, timeoutSeconds, failureThreshold }: any) => ({ periodSeconds, timeoutSeconds, failureThreshold });
const rendered = (objects: any[]) => ({
  ttl: dcs(objects).ttl, loopWait: dcs(objects).loop_wait, retryTimeout: dcs(objects).retry_timeout,
  readiness: timing(server(objects).readinessProbe), liveness: timing(server(objects).livenessProbe),
});
const seconds = Duration.seconds;

describe('failoverProfile', () => {
  test('DEFAULT, and no profile, render Patroni\'s defaults and the probes as before the profiles', () => {
    const expected = {
      ttl: 30, loopWait: 10, retryTimeout: 10,
      readiness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
      liveness: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
    };
    expect(rendered(synth({}))).toEqual(expected);
    expect(rendered(synth({ failoverProfile: FailoverProfile.DEFAULT }))).toEqual(expected);
  });

  test('FAST renders ttl 20 s, loop_wait 2 s, retry_timeout 9 s and probes every 2 s (readiness) and 5 s (liveness)', () => {
    const objects = synth({ failoverProfile: FailoverProfile.FAST });
    expect(rendered(objects)).toEqual({
      ttl: 20, loopWait: 2, retryTimeout: 9,
      readiness: { periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 },
      liveness: { periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 4 },
    });
    // Only the timings differ: the same paths, port and scheme.
    expect(server(objects).readinessProbe.httpGet).toEqual(server(synth({})).readinessProbe.httpGet);
    expect(server(objects).livenessProbe.httpGet).toEqual(server(synth({})).livenessProbe.httpGet);
  });

  test.each(Object.entries(FAILOVER_TIMINGS))('%s keeps Patroni\'s rules and the probes in step with ttl', (_name, profile) => {
    // Patroni: loop_wait + 2 x retry_timeout <= ttl, ttl >= 20, loop_wait >= 1, retry_timeout >= 3.
    expect(profile.loopWaitSeconds + 2 * profile.retryTimeoutSeconds).toBeLessThanOrEqual(profile.ttlSeconds);
    expect(profile.ttlSeconds).toBeGreaterThanOrEqual(20);
    expect(profile.loopWaitSeconds).toBeGreaterThanOrEqual(1);
    expect(profile.retryTimeoutSeconds).toBeGreaterThanOrEqual(3);
    // A frozen leader leaves the Services no later than its lock expires ...
    expect(profile.readiness.periodSeconds * profile.readiness.failureThreshold).toBeLessThanOrEqual(profile.ttlSeconds);
    // ... and the kubelet restarts no Patroni sooner than Patroni's own /liveness gives up on its loop (ttl).
    expect(profile.liveness.periodSeconds * profile.liveness.failureThreshold).toBeGreaterThanOrEqual(profile.ttlSeconds);
    for (const probe of [profile.readiness, profile.liveness]) expect(probe.timeoutSeconds).toBeLessThanOrEqual(probe.periodSeconds);
  });

  test('ttl, loopWait and retryTimeout set one by one override the profile\'s; the probes stay the profile\'s', () => {
    expect(rendered(synth({ failoverProfile: FailoverProfile.FAST, ttl: seconds(40), retryTimeout: seconds(15) }))).toEqual({
      ttl: 40, loopWait: 2, retryTimeout: 15,
      readiness: { periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 },
      liveness: { periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 4 },
    });
    expect(rendered(synth({ failoverProfile: FailoverProfile.DEFAULT, loopWait: seconds(5) })))
      .toMatchObject({ ttl: 30, loopWait: 5, retryTimeout: 10 });
  });

  test('an override breaking loop_wait + 2 x retry_timeout <= ttl with the profile\'s other values is refused, naming which came from the profile', () => {
    const message = thrownMessage(() => synth({ failoverProfile: FailoverProfile.FAST, loopWait: seconds(5) }), 'FAST with loopWait 5 s');
    expectPropErrorMessage(message, 'test/Db', {
      prop: 'highAvailability.ttl', value: '"20s from FailoverProfile.FAST"', fix: /set ttl to 23s or more, or shorten loopWait or retryTimeout/,
    });
    expect(message).toContain('(5s + 2 x 9s from FailoverProfile.FAST)');
  });

  test('an override below Patroni\'s least is refused as before', () => {
    const message = thrownMessage(() => synth({ failoverProfile: FailoverProfile.FAST, ttl: seconds(15) }), 'FAST with ttl 15 s');
    expectPropErrorMessage(message, 'test/Db', { prop: 'highAvailability.ttl', value: '15', fix: /whole number from 20 to 3600/ });
  });

  test('a value that is no FailoverProfile is refused, naming the choices', () => {
    const message = thrownMessage(() => synth({ failoverProfile: 'fastest' as FailoverProfile }), 'failoverProfile "fastest"');
    expectPropErrorMessage(message, 'test/Db', {
      prop: 'highAvailability.failoverProfile', value: '"fastest"', fix: /FailoverProfile\.DEFAULT \("default"\), FailoverProfile\.FAST \("fast"\)/,
    });
  });

  test('Patroni validates the FAST profile\'s patroni.yml', () => {
    expect(validatePatroniConfig(synth({ failoverProfile: FailoverProfile.FAST, synchronousMode: true }), 'db', 'shop', SECRET_VALUES))
      .toEqual({ status: 0, output: '' });
  });
});
