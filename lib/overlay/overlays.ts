import { BackupOverlay, ClusterOverlay, StackOverlay } from './stack-overlay';
import { PgpoolBalancerProps } from '../balancer/pgpool-props';
import { PostgresStatefulClusterProps } from '../cluster/cluster-props';
import { inputError } from '../core/errors';
import { WorkloadProps } from '../core/user-metadata';
import { ExporterSidecarProps } from '../exporter/exporter-props';
import { PgBouncerPoolerProps } from '../pooler/pgbouncer-props';

/**
 * Applies environment and team overlays to a base stack's props: write the stack once with its
 * base props, pass each construct's props through the matching method with the overlays of the
 * environment, and every chart gets the same names and selectors with its own sizes.
 *
 * Overlays apply in order, later ones winning. In each, the stack-wide fields (labels,
 * annotations, placement, networkPolicy) apply first, then the component's section. Objects merge key by key (labels,
 * annotations, storage, resources, settings, nodeSelector, highAvailability, backup); lists and
 * numbers replace (tolerations, backup repositories). `withoutHighAvailability` and
 * `withoutBackup` drop the base's. For what no overlay field covers, a JSON patch
 * (`ApiObject.of(...).addJsonPatch`) is the last resort.
 */
export class Overlays {
  /**
   * A cluster's props with the overlays applied.
   * @param baseProps the base stack's props
   * @param overlays the environment's overlays, applied in order
   */
  public static cluster(baseProps: PostgresStatefulClusterProps, overlays: StackOverlay[]): PostgresStatefulClusterProps {
    return overlays.reduce((props, overlay, index) => {
      const { withoutHighAvailability, withoutBackup, ...section }: ClusterOverlay = overlay.cluster ?? {};
      const where = `Overlays.cluster overlays[${index}]`;
      const off = [
        switchedOff(where, 'highAvailability', withoutHighAvailability, section.highAvailability),
        switchedOff(where, 'backup', withoutBackup, section.backup),
      ];
      const kept = Object.fromEntries(Object.entries(props).filter(([key]) => !off.includes(key as typeof off[number])));
      const layer: ClusterLayer = section;
      const merged = [stackWide(overlay), layer].reduce<object>(mergeLayer, kept) as PostgresStatefulClusterProps;
      if (section.backup && !merged.backup?.repositories) {
        throw inputError(where, 'cluster.backup', Object.keys(section.backup), 'changes backups that the base and the earlier overlays do not have (or turned off)',
          'list backup.repositories in this overlay to turn backups on here, or set backup in the base stack');
      }
      return merged;
    }, baseProps);
  }

  /**
   * A pooler's props with the overlays applied.
   * @param baseProps the base stack's props
   * @param overlays the environment's overlays, applied in order
   */
  public static pooler(baseProps: PgBouncerPoolerProps, overlays: StackOverlay[]): PgBouncerPoolerProps {
    return applyOverlays(baseProps, overlays, (overlay) => [stackWide(overlay), overlay.pooler]);
  }

  /**
   * A balancer's props with the overlays applied.
   * @param baseProps the base stack's props
   * @param overlays the environment's overlays, applied in order
   */
  public static balancer(baseProps: PgpoolBalancerProps, overlays: StackOverlay[]): PgpoolBalancerProps {
    return applyOverlays(baseProps, overlays, (overlay) => [stackWide(overlay), overlay.balancer]);
  }

  /**
   * An exporter's props with the overlays applied (exporters run in their target's pods, so
   * the stack-wide placement is the target's already).
   * @param baseProps the base stack's props
   * @param overlays the environment's overlays, applied in order
   */
  public static exporter(baseProps: ExporterSidecarProps, overlays: StackOverlay[]): ExporterSidecarProps {
    return applyOverlays(baseProps, overlays, (overlay) => [overlay.exporter]);
  }

  private constructor() {}
}

/** The overlay's WorkloadProps, which apply to every workload: everything but the component sections. */
function stackWide(overlay: StackOverlay): WorkloadProps {
  const { cluster: _cluster, pooler: _pooler, balancer: _balancer, exporter: _exporter, ...workload } = overlay;
  return workload;
}

/** A cluster overlay's section as a layer: partial props, whose backup may leave the repositories out. */
type ClusterLayer = Omit<Partial<PostgresStatefulClusterProps>, 'backup'> & { readonly backup?: BackupOverlay };

/**
 * The prop a `without<Feature>` switch drops, refused beside the same overlay's fields for it,
 * which would drop the feature and change it at once.
 */
function switchedOff(where: string, prop: 'highAvailability' | 'backup', off: boolean | undefined, fields: object | undefined): typeof prop | undefined {
  const switchName = `without${prop[0].toUpperCase()}${prop.slice(1)}`;
  if (off && fields !== undefined) {
    throw inputError(where, `cluster.${switchName}`, off, `comes with cluster.${prop} (${Object.keys(fields).join(', ') || 'empty'}) in the same overlay`,
      `keep ${switchName} to run this environment without ${prop}, or drop it to change the base's ${prop}`);
  }
  return off ? prop : undefined;
}

/** The layers are typed as partial props, so an overlay field that is not a prop does not compile. */
function applyOverlays<T extends object>(base: T, overlays: StackOverlay[], layersOf: (overlay: StackOverlay) => Array<Partial<T> | undefined>): T {
  return overlays.flatMap(layersOf).reduce<T>((props, layer) => (layer ? mergeLayer(props, layer) as T : props), base);
}

/** Plain data such as labels or resources, not a Duration, a construct or a list. */
function isPlainObject(value: unknown): value is { [key: string]: unknown } {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** `layer` over `base`: unset fields keep the base, objects merge key by key, the rest replaces. */
function mergeLayer(base: object, layer: object): object {
  const merged: { [key: string]: unknown } = { ...base };
  for (const [key, value] of Object.entries(layer)) {
    if (value === undefined) continue;
    const current = (base as { [key: string]: unknown })[key];
    merged[key] = isPlainObject(value) && isPlainObject(current) ? mergeLayer(current, value) : value;
  }
  return merged;
}
