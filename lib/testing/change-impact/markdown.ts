import { EXIT_CODES } from './exit-codes';
import { ChangeImpactFinding, ComponentImpact } from './report-types';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function summary(components: ComponentImpact[]): string[] {
  const rows = components.map((c) => {
    const pods = c.restarts.reduce((n, r) => n + r.pods.length, 0);
    const action = [...new Set(c.findings.filter((f) => f.gate).map((f) => f.gate))].join(', ') || '-';
    return `| ${cell(c.component)} | ${c.added.length} | ${c.removed.length} | ${c.changed.length} | ${pods} | ${c.settings.length} | ${action} |`;
  });
  return ['| component | added | removed | changed | pods restarting | settings changed | needs acknowledging |', '|---|---|---|---|---|---|---|', ...rows];
}

function section(c: ComponentImpact): string[] {
  const lines = [`### ${c.component}`, ''];
  if (c.added.length) lines.push(`- added: ${c.added.join(', ')}`);
  if (c.removed.length) lines.push(`- removed: ${c.removed.join(', ')}`);
  for (const change of c.changed) lines.push(`- changed: ${change.objectRef} (${change.paths.join(', ')})`);
  for (const r of c.restarts) {
    const flags = r.flags.map((f) => ` **${f}**`).join('');
    lines.push(`- restarts:${flags} ${r.workload}: ${r.pods.join(' -> ')}; ${r.order}; because of ${r.reasons.join(', ')}`);
  }
  for (const s of c.settings) lines.push(`- setting \`${s.parameter}\`: ${s.oldValue ?? '(default)'} -> ${s.newValue ?? '(default)'}: ${s.action}; ${s.note}`);
  if (c.maxConnectionsBefore !== undefined || c.maxConnectionsAfter !== undefined) {
    lines.push(`- max_connections: ${c.maxConnectionsBefore ?? '(none)'} -> ${c.maxConnectionsAfter ?? '(none)'}`);
  }
  for (const s of c.storage) lines.push(`- storage ${s.workload} ${s.claim}: ${s.before ?? '(none)'} -> ${s.after ?? '(none)'}: ${s.note}`);
  for (const f of c.findings.filter((x) => x.gate || x.fix)) {
    lines.push(`- ${f.gate ? `**${f.gate}**` : 'note'}: ${f.objectRef ? `${f.objectRef}: ` : ''}${f.message}${f.fix ? `; do this: ${f.fix}` : ''}`);
  }
  const noted = (x: ChangeImpactFinding) => ['pod-roll', 'connections', 'certificate'].includes(x.category) || x.message.startsWith('the settings');
  for (const f of c.findings.filter((x) => !x.gate && !x.fix && noted(x))) {
    lines.push(`- note: ${f.objectRef ? `${f.objectRef}: ` : ''}${f.message}`);
  }
  return [...lines, ''];
}

/** The report as a pull request comment: a summary table, then one section per component. */
export function renderMarkdown(components: ComponentImpact[], exitCode: number): string {
  if (components.length === 0) return '## Change impact\n\nNo object changes.\n';
  const gate = EXIT_CODES.find((e) => e.code === exitCode)?.gate;
  const verdict = exitCode === 0 ? 'exit code 0: nothing left to acknowledge' : `exit code ${exitCode}: **${gate}** not acknowledged (--allow ${gate})`;
  return ['## Change impact', '', verdict, '', ...summary(components), '', ...components.flatMap(section)].join('\n');
}
