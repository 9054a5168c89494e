import { parse, stringify } from 'yaml';
import { CLUSTER_FILES, CLUSTER_PATHS, PATRONI_ROLE_LABEL, PATRONI_SCOPE_LABEL } from './cluster-layout';
import { ClusterModel, ParameterValue } from './cluster-model';
import { patroniCloneBootstrap, patroniSourceMethods, patroniStandbyCluster, standbyReplicationTls } from './patroni-source';
import { identLines, renderPgHbaConf } from './pg-hba-conf';
import { parameterSections, PATRONI_MANAGED_PARAMETERS, RECOVERY_PARAMETERS } from './postgresql-conf';
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
  const { parameters, recovery } = patroniParameters(model);
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
      // The store's first dynamic configuration; the settings agent keeps it at patroni-dynamic.json since.
      dcs: dynamicConfiguration(model, parameters),
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
      // A clone: patroni-source.sh copies the source instead (patroni-source.ts).
      ...patroniCloneBootstrap(model),
      post_bootstrap: scriptPath,
    },
    postgresql: {
      data_dir: CLUSTER_PATHS.pgdata,
      pgpass: CLUSTER_PATHS.passfile,
      listen: `*:${model.port}`,
      use_unix_socket: true,
      // A standby streaming from its source verifies the source's certificate and the members' (patroni-source.ts).
      authentication: { superuser: {}, replication: standbyReplicationTls(model) ?? verified, rewind: standbyReplicationTls(model) ?? verified },
      // Also here: Patroni takes the settings every member must share (max_connections,
      // wal_level, ...) only from its store, the others from here, applied by a reload.
      parameters,
      // Patroni 3 and 4 write these only while the member is a replica (one among the
      // parameters would be moved here by Patroni, replacing the whole section).
      ...(Object.keys(recovery).length > 0 ? { recovery_conf: recovery } : {}),
      pg_hba: pgHba,
      // Patroni writes these to the data directory's pg_ident.conf and reloads.
      ...(model.hba.identMaps.length > 0 ? { pg_ident: identLines(model) } : {}),
      callbacks: { on_start: scriptPath, on_role_change: scriptPath },
      basebackup: [{ checkpoint: 'fast' }, ...walDir],
      ...patroniSourceMethods(model),
    },
  };
  return `# patroni.yml of cluster "${model.name}", rendered by cdk8s-postgres: change the construct's props, not this file.\n${stringify(config, YAML_OPTIONS)}`;
}

type Parameters = { [name: string]: ParameterValue };

/** The instance's parameters but those Patroni sets itself (listen_addresses, port, ...), and the recovery ones apart. */
function patroniParameters(model: ClusterModel): { parameters: Parameters; recovery: Parameters } {
  const parameters: Parameters = {};
  const recovery: Parameters = {};
  for (const { name, value } of parameterSections(model).flatMap((section) => section.parameters)) {
    if (RECOVERY_PARAMETERS.has(name)) recovery[name] = value;
    else if (!PATRONI_MANAGED_PARAMETERS.has(name)) parameters[name] = value;
  }
  return { parameters, recovery };
}

/**
 * Patroni's dynamic configuration as the props make it: bootstrap.dcs at the first start, and
 * patroni-dynamic.json, which the leader's settings agent (patroni-settings-agent.ts) patches
 * the store to whenever they differ. Patroni takes these only from its store.
 */
function dynamicConfiguration(model: ClusterModel, parameters: Parameters) {
  const ha = model.highAvailability!;
  const standby = patroniStandbyCluster(model);
  return {
    ttl: ha.ttlSeconds,
    loop_wait: ha.loopWaitSeconds,
    retry_timeout: ha.retryTimeoutSeconds,
    maximum_lag_on_failover: ha.maximumLagOnFailover,
    primary_start_timeout: ha.primaryStartTimeoutSeconds,
    synchronous_mode: ha.synchronousMode,
    synchronous_mode_strict: ha.synchronousModeStrict,
    ...(ha.memberSlotsTtlSeconds !== undefined ? { member_slots_ttl: ha.memberSlotsTtlSeconds } : {}),
    postgresql: { use_pg_rewind: true, use_slots: true, parameters },
    // A standby cluster while `standby` is set; the settings agent removes it once dropped, which promotes.
    ...(standby ? { standby_cluster: standby } : {}),
  };
}

/** patroni-dynamic.json: the dynamic configuration the props want, for the settings agent. */
export function renderPatroniDynamicConfig(model: ClusterModel): string {
  return `${JSON.stringify(dynamicConfiguration(model, patroniParameters(model).parameters), undefined, 2)}\n`;
}

/**
 * What of the HA mode's Config files only a Patroni restart applies, for the pod template's
 * checksum: the settings agent applies the parameters and pg_hba (a reload, then restarts one
 * member at a time) and the dynamic configuration (the store), so their changes roll no pod;
 * bootstrap is read only at the first start, postgresql.conf and pg_hba.conf only by restore.sh
 * before it.
 */
export function patroniRestartFiles(configFiles: { [file: string]: string }): { [file: string]: string } {
  const reloaded: string[] = [CLUSTER_FILES.patroniConfig, CLUSTER_FILES.patroniDynamicConfig, CLUSTER_FILES.postgresqlConf, CLUSTER_FILES.pgHbaConf,
    CLUSTER_FILES.pgIdentConf];
  const others = Object.fromEntries(Object.entries(configFiles).filter(([name]) => !reloaded.includes(name)));
  const config = parse(configFiles[CLUSTER_FILES.patroniConfig], { version: '1.1' });
  delete config.bootstrap;
  delete config.postgresql.parameters;
  delete config.postgresql.pg_hba;
  delete config.postgresql.pg_ident;
  return { ...others, [`${CLUSTER_FILES.patroniConfig} (restart)`]: JSON.stringify(config) };
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
