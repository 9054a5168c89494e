import { CLUSTER_FILES, CLUSTER_PATHS, replicaSlotName } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { PASSFILE_USER_FUNCTION } from './rollout-order';
import { k8s } from '../core/kube';
import { restrictedContainer } from '../core/pod-baseline';
import { resourceRequirements } from '../core/resources';
import { logFunction } from '../core/shell-functions';

/** The sidecar's container name. */
export const SETTINGS_AGENT_CONTAINER = 'settings-agent';
/** How often it looks at the mounted files and, on the primary, at the slots. */
export const SETTINGS_AGENT_INTERVAL_SECONDS = 10;
/**
 * How long a slot of no current replica must stay inactive before the primary's agent drops it:
 * several loops, so a replica being created (its bootstrap creates the slot, then pg_basebackup
 * takes it seconds later) keeps it while the primary's copy of the ConfigMap still lags.
 */
export const SLOT_DROP_GRACE_SECONDS = 60;

/**
 * The environment settings-agent.sh reads; the e2e tests set it to paths on a workstation.
 * SLOT_DROP_GRACE_SECONDS overrides the grace period.
 */
export const SETTINGS_AGENT_ENVIRONMENT = ['CONFIG_DIR', 'PGHOST', 'PGPORT', 'PGPASSFILE', 'POSTGRES_ROLE', 'SLOT_DROP_GRACE_SECONDS'] as const;

/** The Config ConfigMap's file of the replicas' slot names for the current `instances`, one a line, which the primary's agent keeps. */
export function renderReplicaSlots(model: ClusterModel): string {
  return model.replicaApplicationNames.map((slot) => `${slot}\n`).join('');
}

/**
 * The plain mode's settings agent beside PostgreSQL in every instance pod (the postgres
 * container's process is not visible from it: the pod shares no process namespace). It reloads
 * over SQL, logging in over the socket as the replication role with its passfile, which the
 * provisioning grants pg_reload_conf and reading the files' errors. It holds no session.
 */
export function settingsAgentContainer(model: ClusterModel, role: 'primary' | 'replica', volumeMounts: k8s.VolumeMount[]): k8s.Container {
  const environment: { [name in typeof SETTINGS_AGENT_ENVIRONMENT[number]]: string } = {
    CONFIG_DIR: CLUSTER_PATHS.configDir,
    PGHOST: CLUSTER_PATHS.socketDir,
    PGPORT: String(model.port),
    PGPASSFILE: CLUSTER_PATHS.passfile,
    POSTGRES_ROLE: role,
    SLOT_DROP_GRACE_SECONDS: String(SLOT_DROP_GRACE_SECONDS),
  };
  return restrictedContainer({
    name: SETTINGS_AGENT_CONTAINER,
    image: model.image,
    command: [`${CLUSTER_PATHS.scriptsDir}/${CLUSTER_FILES.settingsAgentScript}`],
    env: Object.entries(environment).map(([name, value]) => ({ name, value })),
    // bash asleep, and psql for a moment every loop.
    resources: resourceRequirements({ cpuRequest: '5m', cpuLimit: '100m', memoryRequest: '32Mi', memoryLimit: '32Mi', memoryLimitBytes: 32 * 2 ** 20 }),
    volumeMounts,
  });
}

/** bash: reload <conf> <hba>, pg_reload_conf and a log of what it did; fails when PostgreSQL was not reached. */
const RELOAD_FUNCTION = `applied_conf=""
applied_hba=""
started=""
# reload <conf> <hba>: pg_reload_conf, then what it did. Fails when PostgreSQL was not reached.
reload() {
  local names line
  names=$(changed_names "$applied_conf" "$1")
  query "SELECT pg_reload_conf()" > /dev/null || return 1
  # The postmaster rereads the files when it takes the signal; later sessions see the outcome.
  sleep 2
  if [[ -z $started ]]; then
    log "reloaded at start, so the files mounted now are in effect"
    started=1
  else
    while IFS='|' read -r name setting pending; do
      if [[ $pending == t ]]; then
        log "$name changed: pending_restart, still $setting until PostgreSQL restarts"
      elif [[ -n $name ]]; then
        log "$name changed: applied, now $setting"
      fi
    done < <(query "SELECT name, setting || coalesce(unit, ''), pending_restart FROM pg_settings WHERE name IN ($names) ORDER BY name")
  fi
  line=$(query "SELECT string_agg(name, ', ' ORDER BY name) FROM pg_settings WHERE pending_restart")
  if [[ -n $line ]]; then
    log "pending_restart: $line; a restart of the pod applies them (a change of them rolls the pods)"
  fi
  while IFS= read -r line; do
    [[ -n $line ]] && log "postgresql.conf $line: not applied, PostgreSQL keeps the previous value"
  done < <(query "SELECT format('line %s: %s: %s', f.sourceline, f.name, f.error) FROM pg_file_settings f
    WHERE f.error IS NOT NULL AND NOT EXISTS (SELECT FROM pg_settings s WHERE s.name = f.name AND s.pending_restart) ORDER BY f.sourceline")
  while IFS= read -r line; do
    [[ -n $line ]] && log "pg_hba.conf $line: the file was not loaded, PostgreSQL keeps the previous rules"
  done < <(query "SELECT format('line %s: %s', line_number, error) FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number")
}`;

/**
 * bash: drop_removed_slots, on the primary: a slot named like a replica's that is not in the
 * replica-slots file and inactive for the grace period is dropped, if still inactive.
 */
const DROP_REMOVED_SLOTS_FUNCTION = `# Slots of replicas scaled away, by the time each was first seen inactive and not wanted.
declare -A unwanted_since=()
drop_removed_slots() {
  local wanted rows slot active seen=" "
  [[ -r $slots_file ]] || return 0
  wanted=$(< "$slots_file")
  rows=$(query "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical' AND starts_with(slot_name, '$prefix')") || return 0
  while IFS='|' read -r slot active; do
    [[ $slot =~ ^\${prefix}[0-9]+$ ]] || continue
    seen+="$slot "
    if [[ $active == t ]] || grep -qxF -- "$slot" <<< "$wanted"; then
      unset "unwanted_since[$slot]"
    elif [[ -z \${unwanted_since[$slot]:-} ]]; then
      unwanted_since[$slot]=$SECONDS
      log "slot $slot is inactive and no current replica's: dropping it in \${grace}s unless a replica takes it"
    elif ((SECONDS - unwanted_since[$slot] >= grace)); then
      # The call is in the select list: it runs only for the row the WHERE keeps, if the slot is still inactive.
      if [[ -n $(query "SELECT 'dropped', pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot' AND NOT active") ]]; then
        log "dropped slot $slot, inactive and no current replica's for $((SECONDS - unwanted_since[$slot]))s"
      fi
      unset "unwanted_since[$slot]"
    fi
  done <<< "$rows"
  for slot in "\${!unwanted_since[@]}"; do
    [[ $seen == *" $slot "* ]] || unset "unwanted_since[$slot]"
  done
}`;

/**
 * settings-agent.sh. Every SETTINGS_AGENT_INTERVAL_SECONDS: when the mounted postgresql.conf or
 * pg_hba.conf differs from what it last reloaded (and once at its start), SELECT
 * pg_reload_conf(), then log the changed parameters as applied or pending_restart, and the
 * files' errors (PostgreSQL keeps the previous pg_hba.conf rules when the new file has one). On
 * the primary, it drops a slot named like a replica's (`<cluster>_replica_<ordinal>`) that is
 * not in the replica-slots file and has been inactive for the grace period; no other slot.
 */
export function renderSettingsAgentScript(model: ClusterModel): string {
  const prefix = `${replicaSlotName(model.objectNames.replica)}_`;
  return `#!/usr/bin/env bash
# settings-agent.sh of cluster "${model.name}", rendered by cdk8s-postgres: a sidecar of every
# instance pod. The kubelet refreshes the mounted ConfigMap in place: when postgresql.conf or
# pg_hba.conf changed, this reloads PostgreSQL and logs what applied and what waits for a
# restart; on the primary it drops the slots of replicas scaled away (see
# lib/cluster/plain-settings-agent.ts). One connection per action, over the socket.
set -uo pipefail
: "\${CONFIG_DIR:?}" "\${PGHOST:?}" "\${PGPORT:?}" "\${PGPASSFILE:?}" "\${POSTGRES_ROLE:?}"
interval=${SETTINGS_AGENT_INTERVAL_SECONDS}
grace=\${SLOT_DROP_GRACE_SECONDS:-${SLOT_DROP_GRACE_SECONDS}}
conf_file="$CONFIG_DIR/${CLUSTER_FILES.postgresqlConf}"
hba_file="$CONFIG_DIR/${CLUSTER_FILES.pgHbaConf}"
slots_file="$CONFIG_DIR/${CLUSTER_FILES.replicaSlots}"
prefix='${prefix}'
${logFunction('settings-agent', '$POSTGRES_ROLE')}

${PASSFILE_USER_FUNCTION}
PGUSER=$(passfile_user "$PGPASSFILE")
export PGUSER PGDATABASE=postgres PGCONNECT_TIMEOUT=3 PGAPPNAME=settings-agent

# query <sql>: its rows, fields separated by "|"; psql's error goes to the log.
query() {
  psql --no-psqlrc --tuples-only --no-align --quiet --set=ON_ERROR_STOP=1 --command="$1"
}

# parameters <postgresql.conf text>: "name=value" lines, names lower-cased.
parameters() {
  local line
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_.]*)[[:space:]]*=?[[:space:]]*(.*)$ ]]; then
      printf '%s=%s\\n' "\${BASH_REMATCH[1],,}" "\${BASH_REMATCH[2]}"
    fi
  done <<< "$1"
}

# changed_names <old text> <new text>: the parameters set, changed or removed, as a SQL list.
changed_names() {
  local list
  list=$(sort <(parameters "$1") <(parameters "$2") | uniq -u | cut -d= -f1 | sort -u | sed "s/.*/'&'/" | paste -sd,)
  printf '%s' "\${list:-''}"
}

${RELOAD_FUNCTION}
${DROP_REMOVED_SLOTS_FUNCTION}
log "watching $conf_file and $hba_file every \${interval}s$([[ $POSTGRES_ROLE == primary ]] && echo ", and replica slots not in $slots_file (grace \${grace}s)")"
while true; do
  if pg_isready --quiet; then
    conf=$(< "$conf_file")
    hba=${model.hba.identMaps.length > 0 ? `$(cat -- "$hba_file" "$CONFIG_DIR/${CLUSTER_FILES.pgIdentConf}")` : '$(< "$hba_file")'}
    if [[ $conf != "$applied_conf" || $hba != "$applied_hba" ]] && reload "$conf" "$hba"; then
      applied_conf=$conf
      applied_hba=$hba
    fi
    if [[ $POSTGRES_ROLE == primary ]]; then
      drop_removed_slots
    fi
  fi
  sleep "$interval"
done
`;
}
