import { PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { expectPropErrorMessage, thrownMessage } from './support/prop-errors';
import { synthObjects, testChart } from './support/synth';
import { DEFAULT_POSTGRES_MAJOR, postgresMajors } from '../lib/core/postgres-versions';

type Props = Partial<PostgresStatefulClusterProps>;

const SECRETS = {
  superuserSecret: { secretName: 'pg-superuser' },
  replicationSecret: { secretName: 'pg-replication' },
};

function synth(props: Props = {}): any[] {
  const chart = testChart();
  new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
  return synthObjects(chart);
}

function errorMessage(props: Props): string {
  return thrownMessage(() => synth(props), JSON.stringify(props));
}

/** The images of the cluster's StatefulSets' containers and init containers. */
function images(objects: any[]): string[] {
  return objects.filter((o) => o.kind === 'StatefulSet').flatMap((o) => [
    ...o.spec.template.spec.containers, ...(o.spec.template.spec.initContainers ?? []),
  ].map((c: any) => c.image));
}

describe('postgresVersion', () => {
  test('the library supports the majors 14 to 18', () => {
    expect(postgresMajors()).toEqual([14, 15, 16, 17, 18]);
    expect(postgresMajors()).toContain(DEFAULT_POSTGRES_MAJOR);
  });

  test.each([13, 19, 15.5, Number.NaN, -1])('refuses %p, naming the supported majors', (major) => {
    const message = errorMessage({ postgresVersion: major });
    expectPropErrorMessage(message, 'test/Db', { prop: 'postgresVersion', value: String(major), fix: /give one of 14, 15, 16, 17, 18/ });
    expect(message).toContain('is not a PostgreSQL major the library supports (14, 15, 16, 17, 18)');
  });

  test.each(postgresMajors())('PostgreSQL %i runs its own default image in every container of the plain mode', (major) => {
    const used = images(synth({ postgresVersion: major }));
    expect(used.length).toBeGreaterThan(0);
    for (const image of used) expect(image).toMatch(new RegExp(`^postgres:${major}\\.[0-9]+-bookworm$`));
  });
});
