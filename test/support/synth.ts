import { App, Chart, Testing } from 'cdk8s';

/** A chart of a fresh test app, so each test builds its own tree. */
export function testChart(namespace?: string): Chart {
  return new Chart(Testing.app(), 'test', namespace ? { namespace } : {});
}

/** The objects a chart synthesizes, as plain JSON, after the validations `cdk8s synth` runs. */
export function synthObjects(chart: Chart): any[] {
  const errors = chart.node.findAll().flatMap((construct) => construct.node.validate());
  if (errors.length > 0) throw new Error(errors.join('\n'));
  return Testing.synth(chart);
}

/** One object by kind and name; throws with the names present when it is missing. */
export function findObject(objects: any[], kind: string, name: string): any {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) {
    const present = objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ');
    throw new Error(`no ${kind}/${name} among: ${present}`);
  }
  return found;
}

/** All objects of an app's charts, in synthesis order. */
export function synthApp(app: App): any[] {
  return app.charts.flatMap((chart) => chart.toJson());
}
