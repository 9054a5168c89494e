import { ResolvedCredentials } from '../core/credentials';
import { k8s } from '../core/kube';
import { ExporterKind, MonitoringProfile } from '../core/monitoring';
import { restrictedContainer } from '../core/pod-baseline';
import { PodVolume } from '../core/pod-volumes';
import { envFromCredentials } from '../core/secret-env';
import { secretFiles } from '../core/secret-files';
import { COLON_FIELD_FUNCTION } from '../core/shell-functions';

/** How an exporter runs: its container's command, arguments, environment and mounts, and what the pod adds for it. */
export interface ExporterInvocation {
  /** undefined keeps the image's entrypoint. */
  readonly command?: string[];
  readonly args: string[];
  readonly env: k8s.EnvVar[];
  readonly volumeMounts: k8s.VolumeMount[];
  readonly initContainers: k8s.Container[];
  readonly volumes: k8s.Volume[];
  /**
   * Files the exporter reads, which the sidecar puts in a ConfigMap mounted at EXPORTER_FILES_DIR.
   * @default - none
   */
  readonly files?: { readonly [file: string]: string };
}

/** Where an exporter's own files (its ConfigMap) are mounted. */
export const EXPORTER_FILES_DIR = '/etc/exporter-files';

/**
 * postgres_exporter's queries file (--extend.query-path, deprecated since 0.13 but kept through
 * 0.20; the e2e tests read the metrics from 0.11.1 and 0.17.1): what no built-in collector
 * serves. pg_settings is public; the role's pg_monitor reads every row and may call
 * pg_ls_archive_statusdir() (PostgreSQL 12 and later), whose `.ready` files are the WAL segments
 * waiting for archive_command.
 */
export const POSTGRES_EXPORTER_QUERIES = `pg_settings_pending_restart:
  query: "SELECT count(*) AS count FROM pg_settings WHERE pending_restart"
  metrics:
    - count:
        usage: "GAUGE"
        description: "Settings changed in the configuration files that only a restart applies"
pg_archive_ready:
  query: "SELECT count(*) AS segments FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
  metrics:
    - segments:
        usage: "GAUGE"
        description: "WAL segments waiting to be archived"
`;

/** What an exporter's container shares with the init containers it needs. */
export interface ExporterContainerBase {
  readonly image: string;
  readonly resources: k8s.ResourceRequirements;
}

/** How one exporter is run: its image, port and the way it is told where and as whom to connect. */
export interface ExporterSpec {
  /** The `app.kubernetes.io/name` of the exporter's objects. */
  readonly exporterName: string;
  readonly defaultImage: string;
  readonly defaultPort: number;
  readonly invocation: (profile: MonitoringProfile, port: number, credentials: ResolvedCredentials,
    base: ExporterContainerBase) => ExporterInvocation;
}

const sslMode = (profile: MonitoringProfile) => (profile.tlsRequired ? 'require' : 'disable');
const listen = (port: number) => `--web.listen-address=:${port}`;

/** Where the exporter's Secret and its passfile are mounted. */
const SECRET_DIR = '/etc/exporter-secret';
const PASSFILE = '/run/exporter-auth/pgpass';

/** The Secret's password key, as a file only the exporter's containers mount. */
const passwordVolume = (name: string, credentials: ResolvedCredentials) =>
  PodVolume.projected(`${name}-secret`, [secretFiles(credentials.secretName, [{ key: credentials.passwordKey, path: 'password' }])]);

/**
 * passfile.sh, the init container of the exporters on Go's lib/pq, which reads a password from
 * a PGPASSFILE but from no other file: one `*:*:*:*:<password>` line, with backslash and colon
 * escaped, mode 0600 as lib/pq requires, in an in-memory volume. POSIX sh, as the images are
 * busybox and Alpine; printf is a builtin, so the password reaches no command line.
 */
export const PASSFILE_SCRIPT = `set -eu
umask 077
password=$(cat -- "${SECRET_DIR}/password")
case $password in
  '' | *'
'*)
    echo "passfile: the exporter's password must be one non-empty line" >&2
    exit 1
    ;;
esac
${COLON_FIELD_FUNCTION}
password=$(colon_field "$password")
printf '*:*:*:*:%s\\n' "$password" > "$PGPASSFILE.tmp"
mv -f -- "$PGPASSFILE.tmp" "$PGPASSFILE"
`;

/**
 * The user from PGUSER and the password from a passfile, written by an init container from the
 * mounted Secret: lib/pq reads both when the connection string names neither.
 */
function libpqLogin(name: string, credentials: ResolvedCredentials, base: ExporterContainerBase) {
  const secret = passwordVolume(name, credentials);
  const auth = PodVolume.memory(`${name}-auth`, '1Mi');
  const authMount = auth.mount(PASSFILE.slice(0, PASSFILE.lastIndexOf('/')));
  const passfileEnv = { name: 'PGPASSFILE', value: PASSFILE };
  return {
    env: [envFromCredentials('PGUSER', credentials, 'username'), passfileEnv],
    volumeMounts: [{ ...authMount, readOnly: true }],
    initContainers: [restrictedContainer({
      name: `${name}-passfile`,
      image: base.image,
      command: ['/bin/sh', '-c', PASSFILE_SCRIPT],
      env: [passfileEnv],
      resources: base.resources,
      volumeMounts: [secret.readOnlyMount(SECRET_DIR), authMount],
    })],
    volumes: [secret.volume, auth.volume],
  };
}

/** Each exporter, by the daemon it reads. All of them connect over the pod's loopback. */
export const EXPORTERS: { readonly [kind in ExporterKind]: ExporterSpec } = {
  [ExporterKind.POSTGRES]: {
    exporterName: 'postgres-exporter',
    // The newest release (0.20.1). Every metric the alerts and dashboards use kept its name through
    // 0.12-0.20 (0.20 moved pg_settings, pg_stat_activity and pg_replication_slots to standalone
    // collectors under the same names); no removed flag is used, and the one queries file serves
    // pending_restart. The e2e tests run Debian's 0.11.1 and 0.17.1 with these args and this environment.
    defaultImage: 'prometheuscommunity/postgres-exporter:v0.20.1',
    defaultPort: 9187,
    // DATA_SOURCE_PASS_FILE: the password from the mounted Secret, not from the environment.
    invocation: (profile, port, credentials) => {
      const secret = passwordVolume('postgres-exporter', credentials);
      return {
        args: [listen(port), `--extend.query-path=${EXPORTER_FILES_DIR}/queries.yaml`],
        env: [
          { name: 'DATA_SOURCE_URI', value: `127.0.0.1:${profile.daemonPort}/postgres?sslmode=${sslMode(profile)}` },
          envFromCredentials('DATA_SOURCE_USER', credentials, 'username'),
          { name: 'DATA_SOURCE_PASS_FILE', value: `${SECRET_DIR}/password` },
        ],
        volumeMounts: [secret.readOnlyMount(SECRET_DIR)],
        initContainers: [],
        volumes: [secret.volume],
        files: { 'queries.yaml': POSTGRES_EXPORTER_QUERIES },
      };
    },
  },
  [ExporterKind.PGBOUNCER]: {
    exporterName: 'pgbouncer-exporter',
    // The newest release (0.12.1): it reads reserve_pool_size, PgBouncer 1.24's name for the
    // reserve_pool column, which 0.11 lost. Since 0.11 it opens one connection per scrape.
    defaultImage: 'prometheuscommunity/pgbouncer-exporter:v0.12.1',
    defaultPort: 9127,
    invocation: (profile, port, credentials, base) => ({
      args: [listen(port), `--pgBouncer.connectionString=postgres://127.0.0.1:${profile.daemonPort}/pgbouncer?sslmode=${sslMode(profile)}`],
      ...libpqLogin('pgbouncer-exporter', credentials, base),
    }),
  },
  [ExporterKind.PGPOOL]: {
    exporterName: 'pgpool2-exporter',
    // Kept: 1.2.2 (2024) is still the newest release.
    defaultImage: 'pgpool/pgpool2_exporter:1.2.2',
    defaultPort: 9719,
    // The binary itself rather than the image's `sh -c` wrapper, so the port is an argument.
    // pgpool2_exporter reads no *_FILE variable; DATA_SOURCE_USER/PASS would put the password
    // in the environment, so DATA_SOURCE_NAME names neither and lib/pq reads PGUSER and the passfile.
    invocation: (profile, port, credentials, base) => {
      const login = libpqLogin('pgpool2-exporter', credentials, base);
      return {
        command: ['/bin/pgpool2_exporter'],
        args: [listen(port)],
        ...login,
        env: [{ name: 'DATA_SOURCE_NAME', value: `postgresql://127.0.0.1:${profile.daemonPort}/postgres?sslmode=${sslMode(profile)}` }, ...login.env],
      };
    },
  },
};
