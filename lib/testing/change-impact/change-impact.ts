import { compareObjects } from './compare';
import { parseManifests, readManifests } from './manifests';
import { ChangeImpactOptions, ChangeImpactReport } from './report-types';

/**
 * What applying newly synthesized manifests over the deployed ones will do, per database component:
 * objects added, removed and changed; pods that restart and in which order; PostgreSQL settings
 * changed and what applying them takes; changes the API server refuses; storage and
 * max_connections before and after; Secrets to create first. Run it in a pipeline before
 * `kubectl apply` (the `cdk8s-postgres-impact` bin) and gate on `exitCode`.
 */
export class ChangeImpact {
  /**
   * Compares two multi-document YAML texts.
   * @param beforeYaml the manifests deployed now
   * @param afterYaml the manifests synthesized now
   */
  public static compare(beforeYaml: string, afterYaml: string, options?: ChangeImpactOptions): ChangeImpactReport {
    return compareObjects(parseManifests(beforeYaml, 'before'), parseManifests(afterYaml, 'after'), options);
  }

  /**
   * Compares two directories of `*.yaml` files (or two YAML files), such as two `cdk8s synth` outputs.
   * @param before the directory or file deployed now
   * @param after the directory or file synthesized now
   */
  public static compareDirectories(before: string, after: string, options?: ChangeImpactOptions): ChangeImpactReport {
    return compareObjects(readManifests(before), readManifests(after), options);
  }

  private constructor() {}
}
