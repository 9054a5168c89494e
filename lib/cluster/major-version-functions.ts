/**
 * Bash functions bootstrap.sh (and the HA mode's start) share with major-upgrade.sh: the majors of
 * the binaries and of a data directory, the refusal of data this image cannot run, and the
 * directories an upgrade leaves: `$PGDATA.upgrade` (the new cluster being made),
 * `$PGDATA.upgrade-state` (how far it got: "upgraded <transfer>", "verified <transfer>") and
 * `$PGDATA.<old major>` (the old cluster, kept until majorUpgrade is removed). They need `log`.
 */
export const MAJOR_VERSION_FUNCTIONS = `# The major of the PostgreSQL binaries on PATH, from "postgres (PostgreSQL) 17.12 (...)".
binaries_major() {
  local version
  version=$(postgres --version)
  if [[ ! $version =~ \\(PostgreSQL\\)\\ ([0-9]+) ]]; then
    log "cannot read a major version in \\"$version\\""
    return 1
  fi
  printf '%s' "\${BASH_REMATCH[1]}"
}

# data_major <dir>: the major of the cluster in a data directory; empty when it holds none.
data_major() {
  if [[ -s $1/PG_VERSION ]]; then
    tr -d '[:space:]' < "$1/PG_VERSION"
  fi
}

# check_data_version <major upgraded from, or empty>: refuses data of a newer major than the
# binaries (a downgrade by image), and of an older one unless it is the one upgraded from.
check_data_version() {
  local data binaries
  data=$(data_major "$PGDATA")
  if [[ -z $data ]]; then
    return 0
  fi
  binaries=$(binaries_major)
  if [[ $data == "$binaries" || $data == "$1" ]]; then
    return 0
  fi
  if ((data > binaries)); then
    log "$PGDATA holds PostgreSQL $data data, newer than this image's PostgreSQL $binaries, and a data directory cannot be downgraded: set postgresVersion back to $data (and image, if set), or restore a backup into a new cluster"
  elif [[ -z $1 ]]; then
    log "$PGDATA holds PostgreSQL $data data and this image runs PostgreSQL $binaries: to upgrade, set majorUpgrade: { fromVersion: $data } beside postgresVersion $binaries; or set postgresVersion back to $data"
  else
    log "$PGDATA holds PostgreSQL $data data, but majorUpgrade.fromVersion is $1: set majorUpgrade.fromVersion to $data"
  fi
  return 1
}

# With no upgrade asked for, settles one left behind: a verified new cluster half swapped in is
# finished; an unfinished one is abandoned, the old cluster untouched (with --link, pg_upgrade
# only renamed its pg_control, as long as the new cluster never started).
settle_major_upgrade() {
  local state=""
  if [[ -e $PGDATA.upgrade-state ]]; then
    state=$(< "$PGDATA.upgrade-state")
  fi
  if [[ $state == verified* && -z $(data_major "$PGDATA") && -s $PGDATA.upgrade/PG_VERSION ]]; then
    mv -- "$PGDATA.upgrade" "$PGDATA"
    rm -f -- "$PGDATA.upgrade-state"
    log "finished swapping in the upgraded PostgreSQL $(data_major "$PGDATA") cluster"
    return 0
  fi
  if [[ ! -e $PGDATA.upgrade && -z $state ]]; then
    return 0
  fi
  if [[ $state == *link ]]; then
    log "a pg_upgrade --link of $PGDATA got as far as starting the new cluster in $PGDATA.upgrade, so the old one shares files it changed and must never start: set majorUpgrade and postgresVersion back to finish the upgrade, or restore a backup"
    return 1
  fi
  if [[ ! -e $PGDATA/global/pg_control && -e $PGDATA/global/pg_control.old ]]; then
    mv -- "$PGDATA/global/pg_control.old" "$PGDATA/global/pg_control"
  fi
  rm -rf -- "$PGDATA.upgrade" "$PGDATA.upgrade-state"
  log "abandoned an unfinished major upgrade: the PostgreSQL $(data_major "$PGDATA") cluster in $PGDATA is unchanged"
}

# With no upgrade asked for, removes the old clusters kept since finished upgrades; a replica's
# own data moved aside by an upgrade that was rolled back before it re-cloned moves back.
remove_old_majors() {
  local dir major binaries=""
  for dir in "$PGDATA".[0-9]*; do
    [[ -d $dir ]] || continue
    binaries=\${binaries:-$(binaries_major)}
    major=$(data_major "$dir")
    if [[ $major == "$binaries" && -z $(data_major "$PGDATA") ]]; then
      rmdir -- "$PGDATA" 2> /dev/null || true
      mv -- "$dir" "$PGDATA"
      log "moved the PostgreSQL $major data of an upgrade rolled back from $dir to $PGDATA"
    elif [[ -z $major ]] || ((major < binaries)); then
      rm -rf -- "$dir"
      log "removed $dir, the PostgreSQL \${major:-?} data kept since the major upgrade (majorUpgrade is no longer set)"
    fi
  done
}`;
