import { Chart, Testing, Yaml } from 'cdk8s';

/**
 * Helpers for a team's own jest tests of charts built with the library. Objects are plain JSON
 * as `cdk8s synth` writes them: apiVersion, kind and metadata first, every nested map's keys
 * sorted, so snapshots diff cleanly; YAML has one object per document.
 */
export class PostgresTesting {
  /**
   * The chart's objects, after running every construct's validations as `cdk8s synth` does (a
   * failing one throws with the construct path).
   * @param chart the chart to synthesize
   */
  public static synth(chart: Chart): any[] {
    const errors = chart.node.findAll().flatMap((construct) => construct.node.validate());
    if (errors.length > 0) throw new Error(errors.join('\n'));
    return Testing.synth(chart);
  }

  /**
   * The chart as the multi-document YAML `cdk8s synth` writes, for snapshots.
   * @param chart the chart to synthesize
   */
  public static synthYaml(chart: Chart): string {
    return Yaml.stringify(...PostgresTesting.synth(chart));
  }

  /**
   * One object by kind and name; throws listing the objects present when there is none.
   * @param objects synthesized objects
   * @param kind such as `StatefulSet`
   * @param name `metadata.name`
   */
  public static findObject(objects: any[], kind: string, name: string): any {
    const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
    if (!found) throw new Error(`no ${kind}/${name} among: ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
    return found;
  }

  /**
   * Every object of a kind.
   * @param objects synthesized objects
   * @param kind such as `Service`
   */
  public static findObjects(objects: any[], kind: string): any[] {
    return objects.filter((o) => o.kind === kind);
  }

  private constructor() {}
}
