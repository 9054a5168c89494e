import { componentImpact } from './component-impact';
import { groupComponents } from './components';
import { certificateChange, readSecrets } from './credentials';
import { exitCodeOf } from './exit-codes';
import { KubeObject, objectKey, objectRef } from './manifests';
import { renderMarkdown } from './markdown';
import { Acknowledgement, ChangeImpactFinding, ChangeImpactOptions, ChangeImpactReport, ComponentImpact, FindingCategory } from './report-types';
import { DEFAULT_POSTGRES_MAJOR, postgresMajors } from '../../core/postgres-versions';

/** Secrets read now and not before, and Certificates added or changed: what the user must act on first. */
function credentialFindings(before: KubeObject[], after: KubeObject[]): ChangeImpactFinding[] {
  const readBefore = readSecrets(before);
  const findings: ChangeImpactFinding[] = [];
  for (const [key, readers] of readSecrets(after)) {
    if (readBefore.has(key)) continue;
    const [namespace, name] = key.split('/');
    findings.push({
      component: 'credentials and TLS', category: FindingCategory.NEW_SECRET, gate: Acknowledgement.NEW_SECRETS, objectRef: `Secret/${name}`,
      message: `read by ${readers.join(', ')} and not before`,
      fix: `create Secret ${name}${namespace ? ` in namespace ${namespace}` : ''} before applying, or the pods do not start`,
    });
  }
  const beforeByKey = new Map(before.map((o) => [objectKey(o), o]));
  for (const object of after) {
    const message = certificateChange(beforeByKey.get(objectKey(object)), object);
    if (message) findings.push({ component: 'credentials and TLS', category: FindingCategory.CERTIFICATE, objectRef: objectRef(object), message });
  }
  return findings;
}

function credentialsComponent(findings: ChangeImpactFinding[]): ComponentImpact[] {
  if (findings.length === 0) return [];
  return [{
    component: 'credentials and TLS', added: [], removed: [], changed: [], restarts: [], settings: [], storage: [], findings,
  }];
}

function hasChanges(c: ComponentImpact): boolean {
  return c.added.length + c.removed.length + c.changed.length + c.findings.length > 0;
}

/** Compares the objects synthesized before and after and reports what applying the new ones does. */
export function compareObjects(before: KubeObject[], after: KubeObject[], options: ChangeImpactOptions = {}): ChangeImpactReport {
  const major = options.postgresMajor ?? DEFAULT_POSTGRES_MAJOR;
  if (!postgresMajors().includes(major)) {
    throw new Error(`ChangeImpact: postgresMajor ${major} is not a PostgreSQL major the library supports; use one of ${postgresMajors().join(', ')}`);
  }
  const grouped = groupComponents(before, after).map((group) => componentImpact(group, major)).filter(hasChanges);
  const databases = grouped.filter((c) => c.mode !== undefined);
  const components = [...databases, ...grouped.filter((c) => c.mode === undefined), ...credentialsComponent(credentialFindings(before, after))];
  const findings = components.flatMap((c) => c.findings);
  const exitCode = exitCodeOf(findings, options.allow ?? []);
  const json = JSON.stringify({ exitCode, findings, components }, undefined, 2);
  return { components, findings, exitCode, markdown: renderMarkdown(components, exitCode), json };
}
