import { App, Chart, Testing } from 'cdk8s';
import { PostgresTesting } from '../../lib/testing/testing';

/** A chart of a fresh test app, so each test builds its own tree. */
export function testChart(namespace?: string): Chart {
  return new Chart(Testing.app(), 'test', namespace ? { namespace } : {});
}

/** The objects a chart synthesizes, as plain JSON, after the validations `cdk8s synth` runs. */
export const synthObjects = (chart: Chart): any[] => PostgresTesting.synth(chart);

/** One object by kind and name; throws with the names present when it is missing. */
export const findObject = (objects: any[], kind: string, name: string): any => PostgresTesting.findObject(objects, kind, name);

/** All objects of an app's charts, in synthesis order. */
export function synthApp(app: App): any[] {
  return app.charts.flatMap((chart) => chart.toJson());
}
