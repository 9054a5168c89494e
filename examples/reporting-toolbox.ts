import { Chart, ChartProps, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { Ensure, HbaConnection, HbaMethod, IssuerKind, PodSpread, PostgresStatefulCluster } from '../lib';

/**
 * A reporting database with the day-two tools declared in its props: a group role and its
 * members' attributes, a database with the extensions it needs (pg_stat_statements preloaded
 * for it), a tablespace on a volume of its own for the large history tables, a client
 * certificate login for the BI tool mapped through pg_ident, pgBadger reports of its logs, and
 * its instances spread over zones and kept apart from the batch workers' pods.
 * Secrets to create: `reporting-db-superuser`, `reporting-db-replication`, `reporting-owner`
 * and `reporting-analyst` (keys `username`, `password`); cert-manager issues `reporting-db-tls`.
 * `logAnalysis.image` is an image built from pgBadger's Dockerfile, which publishes none.
 */
export class ReportingToolboxChart extends Chart {
  public readonly cluster: PostgresStatefulCluster;

  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, { namespace: 'reporting', ...props });
    this.cluster = new PostgresStatefulCluster(this, 'ReportingDb', {
      instances: 3,
      superuserSecret: { secretName: 'reporting-db-superuser' },
      replicationSecret: { secretName: 'reporting-db-replication' },
      tls: { issuer: { name: 'internal-ca', kind: IssuerKind.CLUSTER_ISSUER } },
      namedRoles: [
        { name: 'report_readers', memberOf: ['pg_read_all_data'] },
        // The BI tool logs in with a client certificate only: a login role without a password.
        { name: 'bi_tool', login: true, memberOf: ['report_readers'], attributes: { connectionLimit: 20 } },
        { name: 'legacy_export', ensure: Ensure.ABSENT },
      ],
      roles: [{ credentials: { secretName: 'reporting-analyst' }, memberOf: ['report_readers'], attributes: { connectionLimit: 5 } }],
      databases: [{
        name: 'reporting',
        owner: { secretName: 'reporting-owner' },
        connectionLimit: 200,
        extensions: [{ name: 'pg_stat_statements' }, { name: 'pgcrypto', schema: 'extensions' }],
      }],
      tablespaces: [{ name: 'history', size: '500Gi', owner: { secretName: 'reporting-owner' } }],
      hbaRules: [{
        connection: HbaConnection.HOSTSSL, databases: ['reporting'], users: ['bi_tool'],
        address: '10.20.0.0/16', method: HbaMethod.CERT, identMap: 'bi',
      }],
      identMaps: [{ mapName: 'bi', systemUsername: 'bi-tool.reporting', databaseUsername: 'bi_tool' }],
      logAnalysis: { image: 'acme/pgbadger:13.1', minDurationStatement: Duration.seconds(1) },
      placement: {
        zoneSpread: PodSpread.PREFERRED,
        podAntiAffinity: {
          preferred: [{ weight: 50, topologyKey: 'kubernetes.io/hostname', matchLabels: { 'app.kubernetes.io/name': 'batch-worker' } }],
        },
      },
    });
  }
}
