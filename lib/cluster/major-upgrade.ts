import { IConstruct } from 'constructs';
import { propError } from '../core/errors';
import { PostgresVersion, resolvePostgresVersion } from '../core/postgres-versions';
import { requireEnum, validateImage } from '../core/validation';

/** How pg_upgrade carries the user data files into the new cluster's directory on the same volume. */
export enum MajorUpgradeTransfer {
  /**
   * Copy every file: the volume needs room for a second copy (checked before anything is
   * changed), the time grows with the data, and the old cluster stays whole until it is removed.
   */
  COPY = 'copy',
  /**
   * Hard links: seconds and no extra room whatever the size, but both clusters share the files:
   * once the new one has started, the old one can never start again (roll back from a backup).
   */
  LINK = 'link',
  /**
   * Reflinks (copy-on-write clones, XFS with reflink or Btrfs): as fast as LINK and as safe as
   * COPY; pg_upgrade --check refuses it on a file system without clones.
   */
  CLONE = 'clone',
}

/**
 * An upgrade of the cluster's data from an older PostgreSQL major to `postgresVersion`, in place
 * with pg_upgrade. Set it beside the new `postgresVersion` while the upgrade rolls out; remove it
 * afterwards, which also deletes the old major's data directory kept until then.
 */
export interface MajorUpgrade {
  /** The major the cluster's data is on now, older than `postgresVersion`. */
  readonly fromVersion: number;
  /**
   * An image with PostgreSQL `fromVersion` in the Debian layout (`/usr/lib/postgresql/<major>`,
   * `/usr/share/postgresql/<major>`: the official images) or the PGDG/Red Hat one
   * (`/usr/pgsql-<major>`: Percona's), from which an init container copies the old binaries for
   * pg_upgrade; it must be built on the same OS release as the cluster's image, whose libraries
   * the old binaries then use.
   * @default - the default image of `fromVersion` (the official Debian one; Percona's in the HA mode)
   */
  readonly fromImage?: string;
  /**
   * How pg_upgrade carries the data files over.
   * @default MajorUpgradeTransfer.COPY
   */
  readonly transfer?: MajorUpgradeTransfer;
}

/** A major upgrade, checked. */
export interface MajorUpgradeModel {
  readonly from: PostgresVersion;
  readonly to: PostgresVersion;
  readonly fromImage: string;
  readonly transfer: MajorUpgradeTransfer;
}

/** What the cluster's other props bring to the upgrade's checks. */
export interface MajorUpgradeContext {
  readonly to: PostgresVersion;
  readonly highAvailability: boolean;
  readonly walVolume: boolean;
}

/** `majorUpgrade` checked against `postgresVersion`: only an upgrade from a known, older major. */
export function resolveMajorUpgrade(scope: IConstruct, upgrade: MajorUpgrade | undefined,
  context: MajorUpgradeContext): MajorUpgradeModel | undefined {
  if (upgrade === undefined) return undefined;
  const to = context.to;
  const from = resolvePostgresVersion(scope, 'majorUpgrade.fromVersion', upgrade.fromVersion);
  if (from.major === to.major) {
    throw propError(scope, 'majorUpgrade.fromVersion', upgrade.fromVersion, 'is postgresVersion itself: there is nothing to upgrade',
      'remove majorUpgrade once the upgrade has rolled out, or set postgresVersion to the newer major to upgrade to');
  }
  if (from.major > to.major) {
    throw propError(scope, 'majorUpgrade.fromVersion', upgrade.fromVersion, `is newer than postgresVersion ${to.major}: pg_upgrade only goes up, `
      + 'a data directory cannot be downgraded', `keep postgresVersion ${from.major}, or restore a logical dump (pg_dump) into a new cluster of ${to.major}`);
  }
  if (context.walVolume) {
    throw propError(scope, 'majorUpgrade', upgrade, 'is not supported with storage.walSize yet: the new cluster\'s WAL directory would have to move '
      + 'between volumes', 'upgrade by logical replication into a new cluster, or by pg_dump/pg_restore');
  }
  const defaultImage = (context.highAvailability ? from.highAvailabilityImage : from.image).image;
  const fromImage = validateImage(scope, upgrade.fromImage ?? defaultImage, defaultImage, 'majorUpgrade.fromImage');
  const transfer = requireEnum(scope, 'majorUpgrade.transfer', upgrade.transfer ?? MajorUpgradeTransfer.COPY, { MajorUpgradeTransfer });
  return { from, to, fromImage, transfer };
}
