import { ResolvedCredentials } from '../core/credentials';
import { k8s } from '../core/kube';
import { ExporterKind, MonitoringProfile } from '../core/monitoring';
import { credentialsEnv } from '../core/secret-env';

/** How one exporter is run: its image, port and the way it is told where and as whom to connect. */
export interface ExporterSpec {
  /** The `app.kubernetes.io/name` of the exporter's objects. */
  readonly exporterName: string;
  readonly defaultImage: string;
  readonly defaultPort: number;
  /** The container's command (undefined keeps the image's entrypoint), arguments and environment. */
  readonly invocation: (profile: MonitoringProfile, port: number, credentials: ResolvedCredentials) => {
    readonly command?: string[];
    readonly args: string[];
    readonly env: k8s.EnvVar[];
  };
}

/** Credentials reach the exporters as environment variables from the Secret, never in arguments. */
const userAndPassword = credentialsEnv;

const sslMode = (profile: MonitoringProfile) => (profile.tlsRequired ? 'require' : 'disable');

/** The DATA_SOURCE_* variables postgres_exporter and pgpool2_exporter both read: the daemon's `postgres` database on loopback. */
const dataSource = (profile: MonitoringProfile, credentials: ResolvedCredentials): k8s.EnvVar[] => [
  { name: 'DATA_SOURCE_URI', value: `127.0.0.1:${profile.daemonPort}/postgres?sslmode=${sslMode(profile)}` },
  ...userAndPassword('DATA_SOURCE_USER', 'DATA_SOURCE_PASS', credentials),
];
const listen = (port: number) => `--web.listen-address=:${port}`;

/** Each exporter, by the daemon it reads. All of them connect over the pod's loopback. */
export const EXPORTERS: { readonly [kind in ExporterKind]: ExporterSpec } = {
  [ExporterKind.POSTGRES]: {
    exporterName: 'postgres-exporter',
    defaultImage: 'prometheuscommunity/postgres-exporter:v0.11.1',
    defaultPort: 9187,
    invocation: (profile, port, credentials) => ({ args: [listen(port)], env: dataSource(profile, credentials) }),
  },
  [ExporterKind.PGBOUNCER]: {
    exporterName: 'pgbouncer-exporter',
    defaultImage: 'prometheuscommunity/pgbouncer-exporter:v0.11.0',
    defaultPort: 9127,
    // Go's lib/pq takes the user and password from PGUSER and PGPASSWORD when the URL has none.
    invocation: (profile, port, credentials) => ({
      args: [listen(port), `--pgBouncer.connectionString=postgres://127.0.0.1:${profile.daemonPort}/pgbouncer?sslmode=${sslMode(profile)}`],
      env: userAndPassword('PGUSER', 'PGPASSWORD', credentials),
    }),
  },
  [ExporterKind.PGPOOL]: {
    exporterName: 'pgpool2-exporter',
    defaultImage: 'pgpool/pgpool2_exporter:1.2.2',
    defaultPort: 9719,
    // The binary itself rather than the image's `sh -c` wrapper, so the port is an argument.
    invocation: (profile, port, credentials) => ({
      command: ['/bin/pgpool2_exporter'],
      args: [listen(port)],
      env: dataSource(profile, credentials),
    }),
  },
};
