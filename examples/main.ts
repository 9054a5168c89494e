import { App } from 'cdk8s';
import { AirflowStackChart } from './airflow-stack';
import { PooledClusterChart } from './pooled-cluster';
import { ReplicatedClusterChart } from './replicated-cluster';

/** Every example as one chart of one app: `cdk8s synth` writes `<chart>.k8s.yaml` for each. */
export function buildExamples(app: App): void {
  new ReplicatedClusterChart(app, 'replicated-cluster');
  new PooledClusterChart(app, 'pooled-cluster');
  new AirflowStackChart(app, 'airflow-stack');
}

if (require.main === module) {
  const app = new App();
  buildExamples(app);
  app.synth();
}
