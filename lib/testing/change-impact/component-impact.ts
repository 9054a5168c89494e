import { ClusterMode, SettingAction, SettingChange } from './classify-setting';
import { clusterMode, ComponentGroup, current } from './components';
import { refusedChanges } from './immutable-fields';
import { objectRef } from './manifests';
import { changedPaths } from './object-diff';
import { Acknowledgement, ChangeImpactFinding, ComponentImpact, FindingCategory, PodRestart } from './report-types';
import { LEADER_FLAG, podRestart, PRIMARY_RESTART_FLAG, scaling } from './rollouts';
import { settingsDiff } from './settings-diff';
import { storageChanges } from './storage';
import { topologyChange } from './topology';

type FindingDraft = Omit<ChangeImpactFinding, 'component'>;

function restartFindings(restarts: PodRestart[]): FindingDraft[] {
  return restarts.flatMap((r): FindingDraft[] => {
    if (r.flags.includes(PRIMARY_RESTART_FLAG)) {
      return [{
        category: FindingCategory.PRIMARY_RESTART, gate: Acknowledgement.PRIMARY_RESTART, objectRef: r.workload,
        message: `primary restart: ${r.pods.join(', ')} restarts (${r.reasons.join('; ')}); clients of the primary lose their connections`,
        fix: 'apply in a maintenance window, or acknowledge with --allow primary-restart',
      }];
    }
    if (r.flags.includes(LEADER_FLAG)) {
      return [{
        category: FindingCategory.PRIMARY_RESTART, gate: Acknowledgement.PRIMARY_RESTART, objectRef: r.workload,
        message: `every member rolls, highest ordinal first (${r.pods.join(', ')}): ${LEADER_FLAG}`,
        fix: 'patronictl switchover to ordinal 0 first so the leader restarts last (once), or acknowledge with --allow primary-restart',
      }];
    }
    return [];
  });
}

function settingFindings(settings: SettingChange[], restarts: PodRestart[]): FindingDraft[] {
  const drafts: FindingDraft[] = settings
    .filter((s) => s.action !== SettingAction.RELOAD)
    .map((s) => ({ category: FindingCategory.SETTING, message: `${s.parameter}: ${s.oldValue ?? '(default)'} -> ${s.newValue ?? '(default)'}: ${s.note}` }));
  const onlyReload = settings.length > 0 && settings.every((s) => s.action === SettingAction.RELOAD);
  const databaseRolls = restarts.some((r) => r.workload.startsWith('StatefulSet/'));
  if (onlyReload && databaseRolls) {
    drafts.push({
      category: FindingCategory.SETTING,
      message: 'the settings need only a reload, which the settings agents apply, but the pods roll anyway for another change of their template',
    });
  }
  return drafts;
}

function objectFindings(group: ComponentGroup, mode: ClusterMode | undefined): FindingDraft[] {
  const drafts: FindingDraft[] = [];
  for (const pair of group.pairs) {
    if (pair.before && pair.after) {
      for (const refused of refusedChanges(pair.before, pair.after)) {
        drafts.push({
          category: FindingCategory.REFUSED_APPLY, gate: Acknowledgement.REFUSED_APPLY, objectRef: refused.objectRef,
          message: `${refused.path} changed: the API server refuses it (immutable field)`, fix: refused.fix,
        });
      }
      const scale = scaling(pair, mode);
      if (scale) drafts.push({ category: FindingCategory.POD_ROLL, objectRef: objectRef(pair.after), message: scale });
    }
  }
  return drafts;
}

/** The impact of the change on one component. */
export function componentImpact(group: ComponentGroup, major: number): ComponentImpact {
  const mode = clusterMode(group);
  const restarts = group.pairs.map((pair) => podRestart(pair, group, mode)).filter((r): r is PodRestart => r !== undefined);
  const topology = topologyChange(group);
  // Across a mode switch the members are a new cluster, whose settings apply at its bootstrap.
  const settings = mode && !topology ? settingsDiff(group, mode, major) : { changes: [] };
  const storage = group.pairs.flatMap(storageChanges);
  const drafts = [
    ...(topology ? [topology] : []),
    ...objectFindings(group, mode),
    ...restartFindings(restarts),
    ...(mode ? settingFindings(settings.changes, restarts) : []),
    ...storage.map((s) => ({ category: FindingCategory.STORAGE, objectRef: s.workload, message: `${s.claim}: ${s.before ?? '(none)'} -> ${s.after ?? '(none)'}: ${s.note}` })),
  ];
  const before = settings.maxConnectionsBefore;
  const after = settings.maxConnectionsAfter;
  if (before !== undefined && after !== undefined && before !== after) {
    drafts.push({
      category: FindingCategory.CONNECTIONS,
      message: `max_connections ${before} -> ${after}${after < before ? ': fewer slots; check the poolers\' and balancers\' demand still fits' : ''}`,
    });
  }
  return {
    component: group.title,
    mode,
    added: group.pairs.filter((p) => !p.before).map((p) => objectRef(p.after!)),
    removed: group.pairs.filter((p) => !p.after).map((p) => objectRef(p.before!)),
    changed: group.pairs.filter((p) => p.before && p.after)
      .map((p) => ({ objectRef: objectRef(current(p)), paths: changedPaths(p.before, p.after, 2) }))
      .filter((c) => c.paths.length > 0),
    restarts,
    settings: settings.changes,
    storage,
    maxConnectionsBefore: before,
    maxConnectionsAfter: after,
    findings: drafts.map((d) => ({ component: group.title, ...d })),
  };
}
