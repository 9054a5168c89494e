import { MAJOR_VERSION_FUNCTIONS } from './major-version-functions';
import { logFunction } from '../core/shell-functions';

/** The environment patroni-upgrade.sh reads besides major-upgrade.sh's, which it runs on the member elected. */
export const PATRONI_UPGRADE_ENVIRONMENT = ['PATRONI_NAME', 'PATRONI_CONFIG', 'MEMBERS', 'COORDINATOR', 'MAJOR_UPGRADE_SCRIPT'] as const;

/**
 * patroni-upgrade.sh: the HA mode's major upgrade step, an init container of every member (the
 * new image, with the old binaries beside it) while `majorUpgrade` is set and the StatefulSet
 * updates OnDelete. An old-major member can neither run on the new binaries nor clone a leader of
 * the old major, and a StatefulSet rolls one pod at a time: so the documented step is to delete
 * every pod at once, and the members settle the upgrade among themselves through Patroni's store
 * (patroni-upgrade.py), before any Patroni starts:
 *  - the member elected (the last primary, shut down cleanly at the newest timeline and
 *    checkpoint) runs major-upgrade.sh as a primary (pg_upgrade, verified, swapped in), then
 *    points the store's initialize key at the new system identifier, and Patroni starts on it and
 *    takes the leader lock;
 *  - every other member waits until a leader runs the new major, moves its old data aside to
 *    `$PGDATA.<old major>` (as major-upgrade.sh does a replica's), and Patroni clones the leader.
 * No Patroni runs while the old data is upgraded, and the members that follow start theirs only
 * with an empty data directory, which never leads: so there is one leader at most.
 */
export function renderPatroniUpgradeScript(clusterName: string): string {
  return `#!/usr/bin/env bash
# patroni-upgrade.sh of cluster "${clusterName}", rendered by cdk8s-postgres while majorUpgrade is set.
# Elects, with the other members through Patroni's store, the one member that upgrades the data
# with major-upgrade.sh; the others follow it once it leads on the new major (see patroni-upgrade.py).
set -euo pipefail

${MAJOR_VERSION_FUNCTIONS}

${STEP}`;
}

const STEP = `: "\${PGDATA:?}" "\${PATRONI_NAME:?}" "\${FROM_MAJOR:?}" "\${TO_MAJOR:?}" "\${OLD_BINDIR:?}" "\${PATRONI_CONFIG:?}" "\${MEMBERS:?}" \\
  "\${COORDINATOR:?}" "\${MAJOR_UPGRADE_SCRIPT:?}"
old_copy="$PGDATA.$FROM_MAJOR"
# The old system identifier, kept from pg_upgrade until the store names the new one.
sysid_file="$PGDATA.upgrade-sysid"

${logFunction('patroni-upgrade', '$PATRONI_NAME')}


# Patroni's own interpreter, which has its store modules: the patroni script's #! line.
coordinator() {
  local interpreter
  read -r interpreter < "$(command -v patroni)"
  # An interpreter line such as "/usr/bin/env python3" is meant to split.
  # shellcheck disable=SC2086
  \${interpreter#\\#!} "$COORDINATOR" "$PATRONI_CONFIG" "$@"
}

# control <bin dir> <data dir> <field>: a pg_controldata field.
control() {
  LC_ALL=C "$1/pg_controldata" "$2" | sed -n "s/^$3: *//p"
}

# This member's data as the election weighs it: how it was shut down, its timeline, checkpoint and system.
member_state() {
  if [[ -z $1 ]]; then
    printf '{"state":"empty"}'
    return
  fi
  printf '{"state":"%s","timeline":%s,"checkpoint":"%s","sysid":"%s"}' "$(control "$OLD_BINDIR" "$PGDATA" 'Database cluster state')" \\
    "$(control "$OLD_BINDIR" "$PGDATA" "Latest checkpoint's TimeLineID")" "$(control "$OLD_BINDIR" "$PGDATA" 'Latest checkpoint location')" \\
    "$(control "$OLD_BINDIR" "$PGDATA" 'Database system identifier')"
}

# After pg_upgrade: Patroni exits on a data directory whose system the store does not name.
publish_new_system() {
  local new_bindir
  new_bindir=$(dirname -- "$(command -v pg_controldata)")
  coordinator initialize "$(< "$sysid_file")" "$(control "$new_bindir" "$PGDATA" 'Database system identifier')"
  rm -f -- "$sysid_file"
}

data=$(data_major "$PGDATA")
if [[ $data == "$TO_MAJOR" ]]; then
  if [[ -e $sysid_file ]]; then
    publish_new_system
  fi
  log "$PGDATA holds PostgreSQL $TO_MAJOR: Patroni starts on it"
  exit 0
fi
check_data_version "$FROM_MAJOR"
if [[ -e $sysid_file ]]; then
  # pg_upgrade was under way here when the pod stopped: this member was elected.
  decision=upgrade
else
  state=$(member_state "$data")
  log "this member's data: $state; waiting for every member ($MEMBERS) to reach this step"
  decision=$(coordinator coordinate "$state" "$MEMBERS" "$TO_MAJOR")
fi
case $decision in
  upgrade)
    log "elected to upgrade the data from PostgreSQL $FROM_MAJOR to $TO_MAJOR"
    if [[ ! -e $sysid_file ]]; then
      control "$OLD_BINDIR" "$PGDATA" 'Database system identifier' > "$sysid_file.tmp"
      mv -f -- "$sysid_file.tmp" "$sysid_file"
    fi
    POSTGRES_ROLE=primary POD_NAME=$PATRONI_NAME "$MAJOR_UPGRADE_SCRIPT"
    publish_new_system
    log "Patroni starts on the upgraded data and takes the leader lock"
    ;;
  follow)
    if [[ -n $data ]]; then
      rm -rf -- "$old_copy"
      mv -- "$PGDATA" "$old_copy"
      log "a leader runs PostgreSQL $TO_MAJOR: moved this member's PostgreSQL $FROM_MAJOR data aside to $old_copy; Patroni clones the leader"
    else
      log "a leader runs PostgreSQL $TO_MAJOR: Patroni clones it"
    fi
    ;;
  *)
    log "unexpected answer from the coordinator: $decision"
    exit 1
    ;;
esac
`;
