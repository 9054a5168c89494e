import { k8s } from './kube';

/** A file of a ConfigMap volume, with its own mode where it differs from the volume's. */
export interface ConfigMapFile {
  readonly key: string;
  readonly path: string;
  readonly mode?: number;
}

/** A mount of the volume `name`, read-only when asked. */
export function volumeMount(name: string, mountPath: string, readOnly = false): k8s.VolumeMount {
  return { name, mountPath, ...(readOnly ? { readOnly } : {}) };
}

/**
 * A pod volume and its mounts, declared once by name: a room declares its volumes in one place
 * and mounts them through the same object, so no volume name is written twice.
 */
export class PodVolume {
  /** The ConfigMap `configMapName`, all of it or only `files`; read-only files by default. */
  public static configMap(name: string, configMapName: string, options: { defaultMode?: number; files?: ConfigMapFile[] } = {}): PodVolume {
    const files = options.files?.map(({ key, path, mode }) => ({ key, path, ...(mode !== undefined ? { mode } : {}) }));
    return new PodVolume({ name, configMap: { name: configMapName, defaultMode: options.defaultMode ?? 0o444, ...(files ? { items: files } : {}) } });
  }

  /** Keys of Secrets (and other sources) in one volume, readable by the pod's group only by default. */
  public static projected(name: string, sources: k8s.VolumeProjection[], defaultMode = 0o440): PodVolume {
    return new PodVolume({ name, projected: { defaultMode, sources } });
  }

  /** A Secret's keys as files of the same names. */
  public static secret(name: string, secretName: string, keys: string[], defaultMode: number): PodVolume {
    return new PodVolume({ name, secret: { secretName, defaultMode, items: keys.map((key) => ({ key, path: key })) } });
  }

  /** An in-memory emptyDir: sockets, pidfiles, files made from Secrets. */
  public static memory(name: string, sizeLimit: string): PodVolume {
    return new PodVolume({ name, emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString(sizeLimit) } });
  }

  /** An emptyDir on the node's disk, where a daemon must write and the root filesystem is read-only. */
  public static scratch(name: string, sizeLimit: string): PodVolume {
    return new PodVolume({ name, emptyDir: { sizeLimit: k8s.Quantity.fromString(sizeLimit) } });
  }

  private constructor(private readonly spec: k8s.Volume) {}

  public get name(): string {
    return this.spec.name;
  }

  /** The pod's volume entry. */
  public get volume(): k8s.Volume {
    return this.spec;
  }

  /** A mount of the volume at `mountPath`. */
  public mount(mountPath: string, readOnly = false): k8s.VolumeMount {
    return volumeMount(this.spec.name, mountPath, readOnly);
  }

  /** A read-only mount of the volume at `mountPath`. */
  public readOnlyMount(mountPath: string): k8s.VolumeMount {
    return this.mount(mountPath, true);
  }
}
