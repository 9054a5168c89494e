import { readFileSync, rmSync } from 'fs';
import { join } from 'path';
import { Chart, Testing } from 'cdk8s';
import { Client } from 'pg';
import { DAEMONS } from './support/daemons';
import { resolveEnv } from './support/environment';
import { PooledClusterChart } from '../../examples/pooled-cluster';
import { PgpoolBalancer } from '../../lib/balancer/pgpool-balancer';
import { CLUSTER_FILES, CLUSTER_PATHS, REPLICATION_GROUP } from '../../lib/cluster/cluster-layout';
import { PostgresStatefulCluster } from '../../lib/cluster/postgres-stateful-cluster';
import { ExporterKind } from '../../lib/core/monitoring';
import { EXPORTERS } from '../../lib/exporter/exporter-kinds';
import { EXPORTER_METRICS } from '../../lib/exporter/exporter-metrics';
import { ExporterSidecar } from '../../lib/exporter/exporter-sidecar';
import { findObject } from '../support/synth';
import { LocalBalancer } from './support/balancer-harness';
import { LocalInstance, SecretStore, bootCluster, localCluster } from './support/cluster-harness';
import {
  LocalPostgresExporter, Sample, configMapsOf, failureOf, runPassfileInit, sidecarContainer, simpleQuery,
} from './support/exporter-harness';
import { LocalPooler, startPooledCluster } from './support/pooler-harness';
import { psql, psqlResult, requirePostgres, runOk, scratchDir, waitFor } from './support/postgres-bin';

/** sslmode=require as libpq means it: TLS, the daemon's self-signed certificate taken unverified. */
const UNVERIFIED_TLS = { rejectUnauthorized: false };

/** The names an exporter must export: all but `up`, which Prometheus itself records per scrape. */
const exportedNames = (kind: ExporterKind) => EXPORTER_METRICS[kind].map((metric) => metric.name).filter((name) => name !== 'up');

/** The metrics read from a SHOW command of an admin console. */
const shownMetrics = (kind: ExporterKind) => EXPORTER_METRICS[kind].filter((metric) => metric.show !== undefined);

describe(`postgres_exporter ${DAEMONS.versions.postgresExporter} beside a real PostgreSQL ${DAEMONS.postgresMajor} primary and replica`, () => {
  const SECRETS: SecretStore = {
    'shop-db-superuser': { username: 'dbadmin', password: 'su-secret' },
    'shop-db-replication': { username: 'replicator', password: 'repl-secret' },
    'shop-app': { username: 'shop_app', password: 'app-secret' },
    // Characters a DSN must escape: the exporter builds postgresql://user:pass@DATA_SOURCE_URI.
    'shop-db-exporter': { username: 'postgres_exporter', password: 'ex@po:rt/pass' },
  };
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'shop' });
  const cluster = new PostgresStatefulCluster(chart, 'ShopDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    // Only the pod network: over loopback, only the exporter's line admits anyone.
    allowedCidrs: ['10.0.0.0/8'],
    superuserSecret: { secretName: 'shop-db-superuser' },
    replicationSecret: { secretName: 'shop-db-replication' },
    databases: [{ name: 'shop', owner: { secretName: 'shop-app' } }],
  });
  const sidecar = new ExporterSidecar(chart, 'ShopDbMetrics', { target: cluster, credentials: { secretName: 'shop-db-exporter' } });
  const profile = cluster.monitoringProfile;
  const objects = chart.toJson();
  const config = findObject(objects, 'ConfigMap', 'shop-db-config');
  const renderedHba: string = config.data[CLUSTER_FILES.pgHbaConf];
  // The one rewrite beyond hosts and ports: in Kubernetes the replica pod streams from its pod
  // address in 10.0.0.0/8; on this machine it can only come from 127.0.0.1, so the replication
  // line (and no other) names loopback instead.
  const replicationLine = new RegExp(`^(host(?:ssl)?\\s+replication\\s+\\+${REPLICATION_GROUP}\\s+)10\\.0\\.0\\.0/8`, 'm');
  config.data[CLUSTER_FILES.pgHbaConf] = renderedHba.replace(replicationLine, '$1127.0.0.1/32');

  const exporterName = EXPORTERS[ExporterKind.POSTGRES].exporterName;
  let scratch: string;
  let primary: LocalInstance;
  let replica: LocalInstance;
  const exporters: LocalPostgresExporter[] = [];
  let primarySamples: Sample[];
  let replicaSamples: Sample[];

  /** SQL over the instance's Unix socket, which `local all all` admits with a password. */
  const overSocket = (instance: LocalInstance, user: string, password: string, sql: string) =>
    runOk('psql', ['--no-psqlrc', '--tuples-only', '--no-align', '--set=ON_ERROR_STOP=1', `--host=${instance.localize(CLUSTER_PATHS.socketDir)}`,
      `--port=${instance.port}`, `--username=${user}`, '--dbname=postgres', '--command', sql], { PGPASSWORD: password }).trim();
  const asSuperuser = (instance: LocalInstance, sql: string) => overSocket(instance, 'dbadmin', 'su-secret', sql);
  const value = (samples: Sample[], name: string, labels: { [label: string]: string } = {}) => samples
    .filter((s) => s.name === name && Object.entries(labels).every(([label, v]) => s.labels[label] === v)).map((s) => s.value);

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('postgresExporter');
    expect(config.data[CLUSTER_FILES.pgHbaConf]).not.toBe(renderedHba);
    scratch = scratchDir('cdk8s-postgres-exporter-e2e');
    [primary, replica] = await localCluster(objects, 'shop-db', scratch, SECRETS);
    await bootCluster([primary, replica]);
    for (const [instance, statefulSet] of [[primary, 'shop-db-primary'], [replica, 'shop-db-replica']] as const) {
      const podSpec = findObject(objects, 'StatefulSet', statefulSet).spec.template.spec;
      const exporter = await LocalPostgresExporter.create(scratch, `${instance.podName}-exporter`, podSpec, sidecarContainer(podSpec, exporterName),
        SECRETS, profile.daemonPort, instance.port, configMapsOf(objects));
      exporters.push(exporter);
      exporter.start();
    }
    // The replica's slot is active once its WAL receiver streams.
    const slot = profile.replicationSlots![0];
    await waitFor(`the replica to stream through slot ${slot}`,
      () => asSuperuser(primary, `SELECT active FROM pg_replication_slots WHERE slot_name = '${slot}'`) === 't', 15_000);
    primarySamples = await exporters[0].scrapeUntilUp();
    replicaSamples = await exporters[1].scrapeUntilUp();
  }, 60_000);

  afterAll(() => {
    for (const exporter of exporters) exporter.kill();
    for (const instance of [primary, replica]) instance?.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the rendered pg_hba.conf admits loopback only to pg_monitor members, for the postgres database', () => {
    const loopbackRules = renderedHba.split('\n').filter((line) => /\s(127\.0\.0\.1\/32|::1\/128)\s/.test(line));
    expect(loopbackRules.map((line) => line.split(/\s+/).slice(0, 4))).toEqual([
      ['host', 'postgres', '+pg_monitor', '127.0.0.1/32'],
      ['host', 'postgres', '+pg_monitor', '::1/128'],
    ]);
    expect(sidecar.port).toBe(9187);
  });

  test('on the primary: pg_up 1, the replica\'s slot active, its pg_stat_replication row, and every metric the alerts and dashboards use', () => {
    const slot = profile.replicationSlots![0];
    expect(profile.replicationSlots).toEqual(['shop_db_replica_0']);
    expect(value(primarySamples, 'pg_up')).toEqual([1]);
    expect(value(primarySamples, 'pg_replication_slots_active', { slot_name: slot })).toEqual([1]);
    expect(value(primarySamples, 'pg_replication_slots_pg_wal_lsn_diff', { slot_name: slot })).toHaveLength(1);
    // Without pg_monitor (pg_read_all_stats) the row's columns would be hidden and no series made.
    const replication = primarySamples.filter((s) => s.name.startsWith('pg_stat_replication_') && s.labels.application_name === slot);
    expect(replication.length).toBeGreaterThan(0);
    expect(replication[0].labels.state).toBe('streaming');
    expect(value(primarySamples, 'pg_settings_max_connections')).toEqual([profile.connectionLimit]);

    const names = new Set(primarySamples.map((s) => s.name));
    expect(exportedNames(ExporterKind.POSTGRES).filter((name) => !names.has(name))).toEqual([]);
  });

  test('pg_settings_pending_restart_count counts a change only a restart applies, from the queries file', async () => {
    const pending = async () => value(await exporters[0].scrapeUntilUp(), 'pg_settings_pending_restart_count');
    const waitForCount = async (expected: number) => {
      const start = Date.now();
      while ((await pending())[0] !== expected) {
        if (Date.now() - start > 15_000) throw new Error(`pg_settings_pending_restart_count is ${await pending()}, not ${expected}, after 15 s`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };
    expect(value(primarySamples, 'pg_settings_pending_restart_count')).toEqual([0]);
    const current = asSuperuser(primary, "SELECT setting FROM pg_settings WHERE name = 'max_locks_per_transaction'");
    asSuperuser(primary, `ALTER SYSTEM SET max_locks_per_transaction = ${Number(current) + 1}`);
    asSuperuser(primary, 'SELECT pg_reload_conf()');
    try {
      await waitForCount(1);
    } finally {
      // The running value again clears the flag; a RESET would keep it (the parameter is then removed from a file).
      asSuperuser(primary, `ALTER SYSTEM SET max_locks_per_transaction = ${current}`);
      asSuperuser(primary, 'SELECT pg_reload_conf()');
    }
    await waitForCount(0);
  });

  test('on the replica: pg_up 1', () => {
    expect(value(replicaSamples, 'pg_up')).toEqual([1]);
    expect(value(replicaSamples, 'pg_settings_max_connections')).toEqual([profile.connectionLimit]);
  });

  test('the exporter\'s role is a member of pg_monitor and no superuser', () => {
    expect(asSuperuser(primary, "SELECT rolsuper, rolcanlogin, pg_has_role(oid, 'pg_monitor', 'member') FROM pg_roles WHERE rolname = 'postgres_exporter'"))
      .toBe('f|t|t');
    // Itself, over the loopback TCP it reads from in the pod.
    expect(psql({ port: primary.port, user: 'postgres_exporter', password: 'ex@po:rt/pass' },
      "SELECT current_user, pg_has_role('pg_monitor', 'member'), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"))
      .toBe('postgres_exporter|t|f');
  });

  test('over loopback TCP other roles are refused the postgres database, though their passwords are right', () => {
    for (const [user, password] of [['shop_app', 'app-secret'], ['dbadmin', 'su-secret']]) {
      const refused = psqlResult({ port: primary.port, user, password }, 'SELECT 1');
      expect(refused.status).not.toBe(0);
      // The superuser meets its reject line first; any other role finds no line for it.
      expect(refused.stderr).toContain(user === 'dbadmin' ? 'pg_hba.conf rejects connection for host "127.0.0.1", user "dbadmin", database "postgres"'
        : `no pg_hba.conf entry for host "127.0.0.1", user "${user}", database "postgres"`);
      expect(overSocket(primary, user, password, 'SELECT current_user')).toBe(user);
    }
    // The exporter's line names the postgres database only.
    const elsewhere = psqlResult({ port: primary.port, user: 'postgres_exporter', password: 'ex@po:rt/pass', database: 'shop' }, 'SELECT 1');
    expect(elsewhere.stderr).toContain('no pg_hba.conf entry for host "127.0.0.1", user "postgres_exporter", database "shop"');
  });
});

describe(`pgbouncer_exporter's logins and SHOW commands against a real PgBouncer ${DAEMONS.versions.pgbouncer}`, () => {
  const SECRETS: SecretStore = {
    'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
    'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
    'airflow-app': { username: 'airflow', password: 'app-secret' },
    'airflow-pgbouncer-auth': { username: 'pgbouncer_auth', password: 'auth-secret' },
    'airflow-pgbouncer-exporter': { username: 'pgbouncer_exporter', password: 'stats"secret' },
  };
  const chart = new PooledClusterChart(Testing.app(), 'e2e', { postgresVersion: DAEMONS.postgresMajor });
  new ExporterSidecar(chart, 'AirflowPgbouncerMetrics', { target: chart.pooler, credentials: { secretName: 'airflow-pgbouncer-exporter' } });
  const profile = chart.pooler.monitoringProfile;
  const objects = chart.toJson();
  const pod = findObject(objects, 'Deployment', 'airflow-pgbouncer').spec.template.spec;
  const container = sidecarContainer(pod, EXPORTERS[ExporterKind.PGBOUNCER].exporterName);
  let scratch: string;
  let instances: LocalInstance[];
  let pooler: LocalPooler;

  /** The rendered connection string, its port the local pooler's; the user from PGUSER, the password from the passfile the init container writes. */
  const exporterLogin = () => {
    const env = resolveEnv(container, SECRETS);
    const url = new URL(container.args.find((arg: string) => arg.startsWith('--pgBouncer.connectionString=')).split('=').slice(1).join('='));
    expect([url.protocol, url.hostname, Number(url.port), url.searchParams.get('sslmode')]).toEqual(['postgres:', '127.0.0.1', profile.daemonPort, 'require']);
    const entry = runPassfileInit(pod, EXPORTERS[ExporterKind.PGBOUNCER].exporterName, SECRETS, join(scratch, 'exporter-volumes'));
    expect(entry.slice(0, 4)).toEqual(['*', '*', '*', '*']);
    return { host: '127.0.0.1', port: pooler.port, database: url.pathname.slice(1), user: env.PGUSER, password: entry[4], ssl: UNVERIFIED_TLS };
  };

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgbouncer');
    scratch = scratchDir('cdk8s-postgres-pgbouncer-exporter-e2e');
    ({ instances, pooler } = await startPooledCluster(scratch, objects, objects, 'airflow-pgbouncer', SECRETS));
  }, 60_000);

  afterAll(() => {
    pooler?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the init step puts the exporter in the userlist and in stats_users', () => {
    expect(resolveEnv(container, SECRETS)).toEqual({ PGUSER: 'pgbouncer_exporter', PGPASSFILE: '/run/exporter-auth/pgpass' });
    expect(runOk('cat', [pooler.localize('/var/run/pgbouncer-auth/stats_users.ini')])).toBe('stats_users = pgbouncer_exporter\n');
    expect(runOk('cat', [pooler.localize('/var/run/pgbouncer-auth/userlist.txt')]))
      .toBe('"pgbouncer_auth" "auth-secret"\n"pgbouncer_exporter" "stats""secret"\n');
  });

  test('the lib/pq stand-in really sends extra_float_digits=2 at login', async () => {
    const login = { host: '127.0.0.1', port: instances[0].port, user: 'airflow', password: 'app-secret', database: 'airflow', ssl: UNVERIFIED_TLS };
    expect((await simpleQuery(login, 'SHOW extra_float_digits')).rows).toEqual([{ extra_float_digits: '2' }]);
    const plain = new Client(login);
    await plain.connect();
    try {
      expect((await plain.query('SHOW extra_float_digits')).rows).toEqual([{ extra_float_digits: '1' }]);
    } finally {
      await plain.end();
    }
  });

  test('as the exporter, sending extra_float_digits, each SHOW its metrics come from has the column (or row)', async () => {
    const login = exporterLogin();
    expect(login.database).toBe('pgbouncer');
    const metrics = shownMetrics(ExporterKind.PGBOUNCER);
    expect(metrics.map((metric) => metric.name)).toEqual(exportedNames(ExporterKind.PGBOUNCER));
    const missing: string[] = [];
    for (const metric of metrics) {
      const result = await simpleQuery(login, `SHOW ${metric.show}`);
      const found = metric.show === 'LISTS' ? result.rows.some((row) => row.list === metric.column)
        : metric.show === 'CONFIG' ? result.rows.some((row) => row.key === metric.column)
          : result.fields.includes(metric.column!);
      if (!found) missing.push(`${metric.name}: SHOW ${metric.show} has no ${metric.column} in ${JSON.stringify(result.fields)}`);
    }
    expect(missing).toEqual([]);
    // The limits the alerts are computed from are the ones PgBouncer runs with.
    const settings = Object.fromEntries((await simpleQuery(login, 'SHOW CONFIG')).rows.map((row) => [row.key, row.value]));
    expect([settings.max_client_conn, settings.query_wait_timeout])
      .toEqual([String(profile.connectionLimit), String(profile.clientWaitLimitSeconds)]);
  });

  test('the exporter may read but not administer: PAUSE, RELOAD and KILL are refused', async () => {
    const login = exporterLogin();
    for (const command of ['PAUSE', 'RELOAD', 'KILL airflow']) {
      expect(await failureOf(login, command)).toBe('admin access needed');
    }
    expect(await failureOf(login, 'SHOW POOLS')).toBeUndefined();
  });

  test('a role of the userlist that is not a stats user is refused on the admin console', async () => {
    // pgbouncer_auth is in the userlist, as the exporter is, but not in stats_users. (Clients
    // looked up through auth_query cannot even authenticate to the admin console: PgBouncer 1.18
    // waits for a server to run auth_query on, which the console has not.)
    const adminConsole = { host: '127.0.0.1', port: pooler.port, database: 'pgbouncer', ssl: UNVERIFIED_TLS };
    expect(await failureOf({ ...adminConsole, user: 'pgbouncer_auth', password: 'auth-secret' }, 'SHOW POOLS')).toBe('not allowed');
    expect(await failureOf({ ...adminConsole, user: 'pgbouncer_auth', password: 'auth-secret' }, 'SHOW STATS')).toBe('not allowed');
  });
});

describe(`pgpool2_exporter's login and SHOW commands through a real Pgpool-II ${DAEMONS.versions.pgpool}`, () => {
  const SECRETS: SecretStore = {
    'airflow-db-superuser': { username: 'postgres', password: 'super-secret' },
    'airflow-db-replication': { username: 'replicator', password: 'repl-secret' },
    'airflow-app': { username: 'airflow', password: 'app-secret' },
    'airflow-pgpool-srcheck': { username: 'srcheck', password: 'check-secret' },
    'airflow-pgpool-exporter': { username: 'pgpool_exporter', password: 'pool:stats' },
  };
  const chart = new Chart(Testing.app(), 'e2e', { namespace: 'airflow-ha' });
  const cluster = new PostgresStatefulCluster(chart, 'AirflowDb', {
    postgresVersion: DAEMONS.postgresMajor,
    instances: 2,
    superuserSecret: { secretName: 'airflow-db-superuser' },
    replicationSecret: { secretName: 'airflow-db-replication' },
    databases: [{ name: 'airflow', owner: { secretName: 'airflow-app' } }],
  });
  const balancer = new PgpoolBalancer(chart, 'AirflowPgpool', {
    pgpoolVersion: DAEMONS.versions.pgpool,
    backend: cluster,
    replicas: 1,
    users: [{ credentials: { secretName: 'airflow-app' }, envPrefix: 'AIRFLOW' }],
    srCheckUser: { secretName: 'airflow-pgpool-srcheck' },
    numInitChildren: 4,
    // Loopback is left out, so only the line the exporter adds to pool_hba.conf lets it in.
    allowedCidrs: ['10.0.0.0/8'],
  });
  new ExporterSidecar(chart, 'AirflowPgpoolMetrics', { target: balancer, credentials: { secretName: 'airflow-pgpool-exporter' } });
  const objects = chart.toJson();
  const pod = findObject(objects, 'Deployment', 'airflow-pgpool').spec.template.spec;
  const container = sidecarContainer(pod, EXPORTERS[ExporterKind.PGPOOL].exporterName);
  let scratch: string;
  let instances: LocalInstance[];
  let local: LocalBalancer;

  /** The rendered DATA_SOURCE_NAME's database and sslmode, through the local Pgpool-II, as PGUSER with the passfile's password. */
  const exporterLogin = () => {
    const env = resolveEnv(container, SECRETS);
    const url = new URL(env.DATA_SOURCE_NAME);
    expect([url.username, url.password, url.hostname, Number(url.port), url.searchParams.get('sslmode')])
      .toEqual(['', '', '127.0.0.1', balancer.monitoringProfile.daemonPort, 'require']);
    const entry = runPassfileInit(pod, EXPORTERS[ExporterKind.PGPOOL].exporterName, SECRETS, join(scratch, 'exporter-volumes'));
    return { host: '127.0.0.1', port: local.port, database: url.pathname.slice(1), user: env.PGUSER, password: entry[4], ssl: UNVERIFIED_TLS };
  };

  beforeAll(async () => {
    requirePostgres();
    DAEMONS.require('pgpool');
    scratch = scratchDir('cdk8s-postgres-pgpool-exporter-e2e');
    instances = await localCluster(objects, 'airflow-db', scratch, SECRETS);
    await bootCluster(instances);
    local = await LocalBalancer.create(scratch, objects, 'airflow-pgpool',
      { [cluster.readWriteHost]: instances[0].port, [cluster.readOnlyHost]: instances[1].port }, SECRETS);
    await local.start();
  }, 60_000);

  afterAll(() => {
    local?.kill();
    for (const instance of instances ?? []) instance.kill();
    if (scratch && !process.env.KEEP_E2E) rmSync(scratch, { recursive: true, force: true });
  });

  test('the exporter\'s Secret reaches the logins init step as files, and pool_passwd gets its entry', () => {
    const passwords = pod.initContainers.find((c: any) => c.name === 'logins');
    expect(pod.volumes.find((v: any) => v.name === 'secrets').projected.sources).toContainEqual({
      secret: { name: 'airflow-pgpool-exporter', items: [{ key: 'username', path: 'login-exporter/username' }, { key: 'password', path: 'login-exporter/password' }] },
    });
    expect(passwords.volumeMounts.map((m: any) => m.name)).toContain('secrets');
    const poolPasswd = readFileSync(join(local.root, 'etc', 'pool_passwd'), 'utf8');
    expect(poolPasswd.split('\n').filter(Boolean).map((line) => line.split(':')[0]).sort()).toEqual(['airflow', 'pgpool_exporter', 'srcheck']);
    expect(poolPasswd).toMatch(/^pgpool_exporter:TEXT/m);
  });

  test('as the exporter, sending extra_float_digits, each SHOW its metrics come from has the column', async () => {
    const login = exporterLogin();
    expect(login.database).toBe('postgres');
    const metrics = shownMetrics(ExporterKind.PGPOOL);
    expect(metrics.map((metric) => metric.name)).toEqual(exportedNames(ExporterKind.PGPOOL));
    const missing: string[] = [];
    for (const metric of metrics) {
      const result = await simpleQuery(login, `SHOW ${metric.show}`);
      if (!result.fields.includes(metric.column!)) missing.push(`${metric.name}: SHOW ${metric.show} has no ${metric.column} in ${JSON.stringify(result.fields)}`);
    }
    expect(missing).toEqual([]);
    const nodes = await simpleQuery(login, 'SHOW POOL_NODES');
    expect(nodes.rows.map((row) => Number(row.port)).sort((a, b) => a - b)).toEqual([instances[0].port, instances[1].port].sort((a, b) => a - b));
    const processes = await simpleQuery(login, 'SHOW POOL_PROCESSES');
    expect(processes.rows).toHaveLength(balancer.monitoringProfile.connectionLimit);
  });

  test('on the backend the exporter\'s role exists, created by the bootstrap, with no pg_monitor and no superuser', () => {
    // On the primary, where the bootstrap provisions roles, and on the replica it streams to.
    for (const instance of instances) {
      const superuser = { port: instance.port, user: 'postgres', password: 'super-secret', host: instance.socketDir };
      expect(psql(superuser, "SELECT rolsuper, rolcanlogin, pg_has_role(oid, 'pg_monitor', 'member') FROM pg_roles WHERE rolname = 'pgpool_exporter'"))
        .toBe('f|t|f');
    }
  });
});
