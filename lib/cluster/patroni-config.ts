import { stringify } from 'yaml';
import { CLUSTER_FILES, CLUSTER_PATHS, PATRONI_ROLE_LABEL, PATRONI_SCOPE_LABEL } from './cluster-layout';
import { ClusterModel, ParameterValue } from './cluster-model';
import { renderPgHbaConf } from './pg-hba-conf';
import { parameterSections, PATRONI_MANAGED_PARAMETERS } from './postgresql-conf';
import { RESTORE_SCRIPT_PATH } from '../backup/backup-scripts';
import { selectorLabels } from '../core/labels';
import { TLS_FILES } from '../core/tls';

/** Patroni reads YAML 1.1, where an unquoted `on` is a boolean; no anchors, no folded lines. */
const YAML_OPTIONS = { version: '1.1', aliasDuplicateObjects: false, lineWidth: 0 } as const;

/**
 * patroni.yml of the HA mode. The instance's parameters and pg_hba.conf lines come from the
 * plain mode's renderers; names and addresses come from the pod's environment (PATRONI_NAME,
 * PATRONI_*_CONNECT_ADDRESS), credentials from secrets.yml, which patroni-start.sh writes beside it.
 */
export function renderPatroniConfig(model: ClusterModel, monitored: boolean): string {
  const ha = model.highAvailability!;
  const parameters: { [name: string]: ParameterValue } = {};
  for (const { name, value } of parameterSections(model).flatMap((section) => section.parameters)) {
    if (!PATRONI_MANAGED_PARAMETERS.has(name)) parameters[name] = value;
  }
  const pgHba = renderPgHbaConf(model, monitored).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  const scriptPath = `${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.provisionScript}`;
  const walDir = model.storage.walSize ? [{ waldir: CLUSTER_PATHS.walDir }] : [];
  // Connections between members verify the certificate against the member's pod name when a CA
  // signs it; a pod's self-signed certificate can only encrypt.
  const verified = model.tls?.authority ? { sslmode: 'verify-full', sslrootcert: `${CLUSTER_PATHS.tlsDir}/${TLS_FILES.authority}` }
    : model.tls ? { sslmode: 'require' } : {};
  const config = {
    scope: model.name,
    ...restApiSections(model),
    kubernetes: {
      labels: selectorLabels(model.componentLabels('database'), false),
      scope_label: PATRONI_SCOPE_LABEL,
      role_label: PATRONI_ROLE_LABEL,
      leader_label_value: 'primary',
      follower_label_value: 'replica',
      standby_leader_label_value: 'primary',
      use_endpoints: false,
    },
    bootstrap: {
      dcs: {
        ttl: ha.ttlSeconds,
        loop_wait: ha.loopWaitSeconds,
        retry_timeout: ha.retryTimeoutSeconds,
        maximum_lag_on_failover: ha.maximumLagOnFailover,
        primary_start_timeout: ha.primaryStartTimeoutSeconds,
        synchronous_mode: ha.synchronousMode,
        synchronous_mode_strict: ha.synchronousModeStrict,
        // Patroni takes max_connections, wal_level and the other settings every member must
        // share from here, once, when the cluster is first initialized.
        postgresql: { use_pg_rewind: true, use_slots: true, parameters },
      },
      // Patroni appends pg_hba after initdb's own lines: without these, initdb's trust lines win.
      initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums', { 'auth-local': 'scram-sha-256' },
        { 'auth-host': 'scram-sha-256' }, ...walDir],
      // Patroni 3.0's validator requires it; postgresql.pg_hba replaces it at the first start.
      pg_hba: pgHba,
      // Created from a backup instead: restore.sh recovers and promotes it, then Patroni starts it.
      ...(model.backup?.restore ? {
        method: 'restore',
        restore: { command: RESTORE_SCRIPT_PATH, keep_existing_recovery_conf: true },
      } : {}),
      post_bootstrap: scriptPath,
    },
    postgresql: {
      data_dir: CLUSTER_PATHS.pgdata,
      pgpass: CLUSTER_PATHS.passfile,
      listen: `*:${model.port}`,
      use_unix_socket: true,
      authentication: { superuser: {}, replication: verified, rewind: verified },
      // Also here, so a change of the other settings reaches a running cluster when its pods
      // restart; Patroni takes the shared ones only from its store (patronictl edit-config).
      parameters,
      pg_hba: pgHba,
      callbacks: { on_start: scriptPath, on_role_change: scriptPath },
      basebackup: [{ checkpoint: 'fast' }, ...walDir],
    },
  };
  return `# patroni.yml of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.\n${stringify(config, YAML_OPTIONS)}`;
}

/**
 * restapi, and ctl for patronictl in the pods. With the cluster's TLS the REST API serves HTTPS
 * with the pods' certificate: the kubelet's probes do not verify it, nor do Patroni 3.1+ members
 * calling each other (Patroni 3.0 presents its certificate as a client certificate and verifies
 * its peers, so a switchover between 3.0 members needs a CA-signed one); patronictl verifies it against the CA
 * when the cluster has one (the certificate names `*.<headless>`, the members' api_url), and
 * cannot otherwise. Authentication comes from secrets.yml.
 */
function restApiSections(model: ClusterModel) {
  const listen = `0.0.0.0:${model.highAvailability!.restApiPort}`;
  const tls = model.tls;
  if (!tls) return { restapi: { listen } };
  const file = (name: string) => `${CLUSTER_PATHS.tlsDir}/${name}`;
  const authority = tls.authority ? file(TLS_FILES.authority) : undefined;
  return {
    restapi: { listen, certfile: file(TLS_FILES.certificate), keyfile: file(TLS_FILES.key), ...(authority ? { cafile: authority } : {}) },
    ctl: authority ? { cacert: authority } : { insecure: true },
  };
}
