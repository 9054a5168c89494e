import { MemoryCheck, PostgresStatefulCluster, PostgresStatefulClusterProps } from '../lib';
import { synthObjects, testChart } from './support/synth';

const SECRETS = { superuserSecret: { secretName: 'su' }, replicationSecret: { secretName: 'repl' } };

describe('memory check: shared_buffers + max_connections x work_mem against the memory limit', () => {
  let warnings: jest.SpyInstance;
  beforeEach(() => { warnings = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined); });
  afterEach(() => warnings.mockRestore());

  const synth = (props: Partial<PostgresStatefulClusterProps>) => {
    const chart = testChart();
    new PostgresStatefulCluster(chart, 'Db', { ...SECRETS, ...props });
    return () => synthObjects(chart);
  };
  // 1Gi limit: shared_buffers 256MB + 200 x 4MB = 1056Mi.
  const over = { settings: { maxConnections: 200 } };

  test('the defaults fit: 256MB + 100 x 4MB in 1Gi', () => {
    synth({})();
    expect(warnings).not.toHaveBeenCalled();
  });

  test('an estimate over the limit warns by default, and the YAML is still written', () => {
    expect(synth(over)().length).toBeGreaterThan(0);
    expect(warnings).toHaveBeenCalledTimes(1);
    expect(warnings.mock.calls[0][0]).toBe('test/Db: shared_buffers + max_connections x work_mem is 1056Mi, over resources.memoryLimit 1024Mi: '
      + 'sessions all sorting at once would get PostgreSQL killed for memory; raise resources.memoryLimit to 1056Mi or more, '
      + 'or lower settings.maxConnections or settings.workMem (a pooler needs few connections), or set memoryCheck to MemoryCheck.OFF');
  });

  test('MemoryCheck.ERROR fails synthesis with the same figures', () => {
    expect(synth({ ...over, memoryCheck: MemoryCheck.ERROR })).toThrow(/^test\/Db: shared_buffers \+ max_connections x work_mem is 1056Mi, over resources.memoryLimit 1024Mi/);
    expect(warnings).not.toHaveBeenCalled();
  });

  test('MemoryCheck.OFF says nothing', () => {
    synth({ ...over, memoryCheck: MemoryCheck.OFF })();
    expect(warnings).not.toHaveBeenCalled();
  });

  test('work_mem and an explicit shared_buffers count: 512MB + 100 x 6MB > 1Gi, 512MB + 100 x 5MB < 1Gi', () => {
    expect(synth({ settings: { sharedBuffers: '512MB', workMem: '6MB' }, memoryCheck: MemoryCheck.ERROR })).toThrow(/is 1112Mi/);
    synth({ settings: { sharedBuffers: '512MB', workMem: '5MB' }, memoryCheck: MemoryCheck.ERROR })();
  });

  test('a larger memory limit makes room: 200 connections fit in 2Gi', () => {
    synth({ ...over, resources: { memoryLimit: '2Gi' }, memoryCheck: MemoryCheck.ERROR })();
  });
});
