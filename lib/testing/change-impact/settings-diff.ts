import { parse } from 'yaml';
import { classifySettingChange, ClusterMode, SettingChange } from './classify-setting';
import { ComponentGroup, findPair } from './components';
import { KubeObject } from './manifests';

/** Parameters by lower-cased name, values as strings. */
type Parameters = { [name: string]: string };

/** `key = value` lines of postgresql.conf: quotes removed, comments and `include` lines ignored. */
export function parsePostgresqlConf(text: string): Parameters {
  const parameters: Parameters = {};
  for (const raw of text.split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*('(?:[^'\\]|\\.|'')*'|[^#\s]*)/.exec(raw);
    if (!match || !match[2]) continue;
    const name = match[1].toLowerCase();
    if (['include', 'include_if_exists', 'include_dir'].includes(name)) continue;
    const value = match[2].startsWith("'") ? match[2].slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, '$1') : match[2];
    parameters[name] = value;
  }
  return parameters;
}

function stringMap(value: unknown): Parameters {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

/** The parameters a cluster's ConfigMap sets, by where they are set. */
function clusterParameters(configMap: KubeObject | undefined, mode: ClusterMode): Array<{ mode: ClusterMode; parameters: Parameters }> | undefined {
  if (!configMap) return undefined;
  if (mode === ClusterMode.PLAIN) return [{ mode, parameters: parsePostgresqlConf(configMap.data?.['postgresql.conf'] ?? '') }];
  // The store's (patroni-dynamic.json, bootstrap.dcs) are the same parameters, which the settings agent applies alike.
  const patroni = parse(configMap.data?.['patroni.yml'] ?? '') ?? {};
  return [{ mode: ClusterMode.HIGH_AVAILABILITY, parameters: stringMap(patroni.postgresql?.parameters) }];
}

function diff(before: Parameters, after: Parameters, mode: ClusterMode, major: number): SettingChange[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return names.filter((name) => before[name] !== after[name]).map((name) => classifySettingChange(name, before[name], after[name], mode, major));
}

/** What a cluster component's settings change does, and its max_connections before and after. */
export interface SettingsDiff {
  readonly changes: SettingChange[];
  readonly maxConnectionsBefore?: number;
  readonly maxConnectionsAfter?: number;
}

function maxConnections(sets: Array<{ parameters: Parameters }> | undefined): number | undefined {
  if (!sets) return undefined;
  const value = sets.map((set) => set.parameters.max_connections).find((v) => v !== undefined);
  return value === undefined ? 100 : Number(value);
}

/** The settings of a cluster component's ConfigMap (`<instance>-config` or `<instance>-patroni`), diffed. */
export function settingsDiff(group: ComponentGroup, mode: ClusterMode, major: number): SettingsDiff {
  const name = mode === ClusterMode.PLAIN ? `${group.instance}-config` : `${group.instance}-patroni`;
  const pair = findPair(group, 'ConfigMap', name);
  const before = clusterParameters(pair?.before, mode);
  const after = clusterParameters(pair?.after, mode);
  const changes = before && after ? before.flatMap((set, i) => diff(set.parameters, after[i].parameters, set.mode, major)) : [];
  return { changes, maxConnectionsBefore: maxConnections(before), maxConnectionsAfter: maxConnections(after) };
}
