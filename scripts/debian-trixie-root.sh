#!/usr/bin/env bash
# Builds (once) a Debian 13 "trixie" root beside the host with the newer daemons the e2e tests
# also run: PostgreSQL 17, PgBouncer 1.24, Pgpool-II 4.6, Patroni 4.0 (role labels), pgBackRest
# 2.55, etcd 3.5, postgres_exporter 0.17, pgbouncer_exporter 0.10. Nothing is installed into the
# host system; the tests run the daemons with `chroot --userspec=postgres:postgres ROOT ...`.
# Idempotent, and safe to run at once from several processes (a lock: the others wait for the
# first); needs root and, the first time, debootstrap and Debian's archive. Prints the root's path.
#   usage: scripts/debian-trixie-root.sh [ROOT]   (default /var/cache/cdk8s-postgres/trixie)
set -euo pipefail
root=${1:-${CDK8S_POSTGRES_TRIXIE_ROOT:-/var/cache/cdk8s-postgres/trixie}}
packages=(postgresql-17 postgresql-client-17 pgbouncer pgpool2 patroni pgbackrest etcd-server etcd-client
  prometheus-postgres-exporter prometheus-pgbouncer-exporter openssl procps util-linux ca-certificates python3-etcd)
stamp="$root/.cdk8s-postgres-ready"
want="${packages[*]}"

mkdir -p "$(dirname "$root")"
exec 9> "$root.lock"
flock 9

# The host's /tmp is the root's /tmp, so a scratch path means the same file on both sides.
mount_into() {
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/tmp" || mount --bind /tmp "$root/tmp"
  mountpoint -q "$root/dev/shm" || { mkdir -p "$root/dev/shm"; mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"; }
}

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  mount_into
  echo "$root"
  exit 0
fi

command -v debootstrap > /dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
mkdir -p "$root"
if [[ ! -x $root/usr/bin/apt-get ]]; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [[ -n $mirror ]] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  debootstrap --variant=minbase trixie "$root" "$mirror" > /dev/null
fi
mount_into
# No package may start a service; the postgres user has the host's ids so files pass between them.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
uid=$(id -u postgres) gid=$(id -g postgres)
chroot "$root" getent group postgres > /dev/null || chroot "$root" groupadd --gid "$gid" postgres
chroot "$root" getent passwd postgres > /dev/null || \
  chroot "$root" useradd --uid "$uid" --gid "$gid" --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres
cp /etc/resolv.conf "$root/etc/resolv.conf"
install() { chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" > /dev/null; }
chroot "$root" apt-get update -qq
# The tests make their own clusters: postgresql-17 is to create no 17/main (nor a dropped one stay).
install postgresql-common
sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' "$root/etc/postgresql-common/createcluster.conf"
grep -q '^create_main_cluster = false$' "$root/etc/postgresql-common/createcluster.conf"
install "${packages[@]}"
if [[ -d $root/etc/postgresql/17/main ]]; then chroot "$root" pg_dropcluster 17 main; fi
echo "$want" > "$stamp"
echo "$root"
