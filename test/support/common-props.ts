import { ContainerResources } from '../../lib';
import { ExpectedPropError } from './prop-errors';

/** The props every pod-running construct shares, and how a suite checks one of its constructs. */
interface CommonProps {
  readonly labels?: { [key: string]: string };
  readonly resources?: ContainerResources;
}

/**
 * The label and resource checks all constructs get from lib/core, as one set of tests for each
 * construct's suite: `expectPropError` and `expectValid` synthesize that suite's construct.
 */
export function describeLabelsAndResources(
  expectPropError: (props: CommonProps, expected: ExpectedPropError) => unknown,
  expectValid: (props: CommonProps) => unknown,
): void {
  describe('labels and resources', () => {
    test('rejects a label key that is not a qualified name', () => {
      expectPropError({ labels: { 'bad key!': 'x' } }, { prop: 'labels', value: '"bad key!"', fix: /letters, digits/ });
    });

    test('rejects a label key with a bad prefix', () => {
      expectPropError({ labels: { 'Example_Com/team': 'x' } }, { prop: 'labels', value: '"Example_Com/team"', fix: /DNS prefix/ });
    });

    test.each(['pay ments', '-payments', 'p'.repeat(64)])('rejects the label value %p', (value) => {
      expectPropError({ labels: { team: value } }, { prop: 'labels.team', value: JSON.stringify(value), fix: /letters, digits/ });
    });

    test('accepts prefixed label keys and an empty value', () => {
      expectValid({ labels: { 'example.com/team': 'payments', 'tier': '' } });
    });

    test('rejects a malformed memory limit', () => {
      expectPropError({ resources: { memoryLimit: 'lots' } }, { prop: 'resources.memoryLimit', value: '"lots"', fix: /"512Mi"/ });
    });

    test('rejects a CPU request above the CPU limit', () => {
      expectPropError({ resources: { cpuRequest: '2', cpuLimit: '1' } }, {
        prop: 'resources.cpuRequest', value: '"2"', fix: /raise resources\.cpuLimit/,
      });
    });
  });
}
