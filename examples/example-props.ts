import { ChartProps } from 'cdk8s';

/** An example chart's props: the chart's, and the PostgreSQL major its clusters run (the e2e tests run each example on theirs). */
export interface ExampleProps extends ChartProps {
  /**
   * PostgreSQL major version of the example's clusters.
   * @default - the library's default (PostgresStatefulClusterProps.postgresVersion)
   */
  readonly postgresVersion?: number;
}
