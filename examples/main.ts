import { writeFileSync } from 'fs';
import { join } from 'path';
import { App } from 'cdk8s';
import { PostgresStatefulCluster, RequiredSecrets } from '../lib';
import { AirflowStackChart } from './airflow-stack';
import { BackedUpClusterChart } from './backed-up-cluster';
import { buildDisasterRecovery } from './disaster-recovery';
import { HaClusterChart } from './ha-cluster';
import { OperatorManagedChart } from './operator-managed';
import { PooledClusterChart } from './pooled-cluster';
import { ReplicatedClusterChart } from './replicated-cluster';
import { ReportingToolboxChart } from './reporting-toolbox';
import { SecureStackChart } from './secure-stack';
import { buildOrdersEnvironments } from './team-overlays';

/** Every example as one chart of one app: `cdk8s synth` writes `<chart>.k8s.yaml` for each. */
export function buildExamples(app: App): void {
  new ReplicatedClusterChart(app, 'replicated-cluster');
  new PooledClusterChart(app, 'pooled-cluster');
  new AirflowStackChart(app, 'airflow-stack');
  new OperatorManagedChart(app, 'operator-managed');
  new SecureStackChart(app, 'secure-stack');
  new HaClusterChart(app, 'ha-cluster');
  new BackedUpClusterChart(app, 'backed-up-cluster');
  new ReportingToolboxChart(app, 'reporting-toolbox');
  buildOrdersEnvironments(app);
  buildDisasterRecovery(app);
}

/** Every cluster's connection budget, one after the other. */
export function connectionBudgetReport(app: App): string {
  return app.node.findAll().filter((c): c is PostgresStatefulCluster => c instanceof PostgresStatefulCluster)
    .map((cluster) => cluster.connectionBudgetReport()).join('\n');
}

if (require.main === module) {
  const app = new App();
  buildExamples(app);
  app.synth();
  writeFileSync(join(app.outdir, 'connection-budget.txt'), connectionBudgetReport(app));
  writeFileSync(join(app.outdir, 'required-secrets.md'), RequiredSecrets.report(app));
}
