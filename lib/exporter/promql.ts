import { MonitoringProfile } from '../core/monitoring';

/**
 * A PromQL label matcher for the component's series: its namespace and pod names, the labels
 * the prometheus-operator (and the usual annotation-based scrape configs) put on every target.
 */
export function componentSelector(profile: MonitoringProfile, extra: string[] = []): string {
  const matchers = [
    ...(profile.namespace ? [`namespace="${profile.namespace}"`] : []),
    `pod=~"${profile.podNamePattern}"`,
    ...extra,
  ];
  return `{${matchers.join(',')}}`;
}

/** A matcher for the replicas' slots, by exact name. */
export function slotMatcher(slots: string[]): string {
  return `slot_name=~"${slots.join('|')}"`;
}

/** kube-state-metrics' series of one CronJob: its namespace, as kube-state-metrics labels it, and name. */
export function cronJobSelector(profile: MonitoringProfile, cronJobName: string): string {
  return `{${[...(profile.namespace ? [`namespace="${profile.namespace}"`] : []), `cronjob="${cronJobName}"`].join(',')}}`;
}
