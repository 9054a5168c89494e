/**
 * The Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
 * profile version v1.27, as plain functions over a pod template: each control returns its
 * findings, an empty list when the pod passes. Written from the standard's tables (restricted
 * fields and allowed values), with the Pod Security admission controller's reading where the
 * tables leave a choice: a container-level field may be left unset when the pod-level one
 * satisfies the control (runAsNonRoot, seccompProfile), an explicit container-level value
 * always counts, and Windows pods (spec.os.name: windows) are exempt from the restricted
 * privilege escalation, seccomp and capabilities controls.
 */

export type PodSecurityLevel = 'baseline' | 'restricted';

export interface PodSecurityFinding {
  /** The control's name, as the standard's tables title it. */
  readonly control: string;
  readonly level: PodSecurityLevel;
  /** Where, relative to the pod template: `spec.containers[0].securityContext.privileged`. */
  readonly path: string;
  readonly message: string;
}

/** What the controls read: a pod template (`metadata` for annotations, `spec` for the rest). */
export interface PodTemplate {
  readonly metadata?: any;
  readonly spec: any;
}

/** A pod template found in a rendered object, with where it is. */
export interface LocatedPodTemplate {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  /** Path of the template in the object: `spec.template`, `spec.jobTemplate.spec.template`, or `` for a Pod. */
  readonly path: string;
  readonly template: PodTemplate;
}

/** Kinds whose objects carry a pod template, and where. */
export const POD_TEMPLATE_PATHS: { readonly [kind: string]: string[] } = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/** The pod templates of a list of objects: Pods themselves and every controller's template. */
export function podTemplatesOf(objects: any[]): LocatedPodTemplate[] {
  const found: LocatedPodTemplate[] = [];
  for (const obj of objects) {
    const steps = POD_TEMPLATE_PATHS[obj?.kind];
    if (!steps) continue;
    const template = steps.reduce((node, step) => node?.[step], obj);
    if (!template?.spec) throw new Error(`${obj.kind}/${obj.metadata?.name} has no pod spec at ${steps.join('.') || 'spec'}`);
    found.push({ kind: obj.kind, name: obj.metadata?.name, namespace: obj.metadata?.namespace, path: steps.join('.'), template });
  }
  return found;
}

type Control = (pod: PodTemplate) => PodSecurityFinding[];

interface ContainerRef { readonly path: string; readonly container: any }

const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;

function containersOf(spec: any): ContainerRef[] {
  return CONTAINER_LISTS.flatMap((list) => (spec?.[list] ?? []).map((container: any, i: number) =>
    ({ path: `spec.${list}[${i}]`, container })));
}

const isWindows = (pod: PodTemplate) => pod.spec?.os?.name === 'windows';

function finding(control: string, level: PodSecurityLevel, path: string, message: string): PodSecurityFinding {
  return { control, level, path, message };
}

// ---------------------------------------------------------------------------------------------
// Baseline

const hostProcess: Control = (pod) => {
  const out: PodSecurityFinding[] = [];
  if (pod.spec.securityContext?.windowsOptions?.hostProcess === true) {
    out.push(finding('HostProcess', 'baseline', 'spec.securityContext.windowsOptions.hostProcess', 'must be unset or false'));
  }
  for (const { path, container } of containersOf(pod.spec)) {
    if (container.securityContext?.windowsOptions?.hostProcess === true) {
      out.push(finding('HostProcess', 'baseline', `${path}.securityContext.windowsOptions.hostProcess`, 'must be unset or false'));
    }
  }
  return out;
};

const hostNamespaces: Control = (pod) => (['hostNetwork', 'hostPID', 'hostIPC'] as const)
  .filter((field) => pod.spec[field] === true)
  .map((field) => finding('Host Namespaces', 'baseline', `spec.${field}`, 'must be unset or false'));

const privilegedContainers: Control = (pod) => containersOf(pod.spec)
  .filter(({ container }) => container.securityContext?.privileged === true)
  .map(({ path }) => finding('Privileged Containers', 'baseline', `${path}.securityContext.privileged`, 'must be unset or false'));

/** Capabilities a baseline pod may add. */
export const BASELINE_CAPABILITIES = ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD',
  'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];

const baselineCapabilities: Control = (pod) => containersOf(pod.spec).flatMap(({ path, container }) =>
  (container.securityContext?.capabilities?.add ?? [])
    .filter((cap: string) => !BASELINE_CAPABILITIES.includes(cap))
    .map((cap: string) => finding('Capabilities', 'baseline', `${path}.securityContext.capabilities.add`,
      `adds ${cap}, outside the baseline set`)));

const hostPathVolumes: Control = (pod) => (pod.spec.volumes ?? [])
  .map((volume: any, i: number) => ({ volume, i }))
  .filter(({ volume }: any) => volume.hostPath !== undefined && volume.hostPath !== null)
  .map(({ volume, i }: any) => finding('HostPath Volumes', 'baseline', `spec.volumes[${i}].hostPath`, `volume ${volume.name} mounts a host path`));

const hostPorts: Control = (pod) => containersOf(pod.spec).flatMap(({ path, container }) =>
  (container.ports ?? []).map((port: any, i: number) => ({ port, i }))
    .filter(({ port }: any) => port.hostPort !== undefined && port.hostPort !== null && port.hostPort !== 0)
    .map(({ port, i }: any) => finding('Host Ports', 'baseline', `${path}.ports[${i}].hostPort`, `binds host port ${port.hostPort}`)));

const APPARMOR_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

const appArmor: Control = (pod) => Object.entries<any>(pod.metadata?.annotations ?? {})
  .filter(([key, value]) => key.startsWith(APPARMOR_PREFIX) && value !== 'runtime/default' && !String(value).startsWith('localhost/'))
  .map(([key, value]) => finding('AppArmor', 'baseline', `metadata.annotations["${key}"]`, `profile ${value} is neither runtime/default nor localhost/*`));

/** SELinux types a baseline pod may set (v1.27; container_engine_t came in v1.31). */
export const BASELINE_SELINUX_TYPES = ['', 'container_t', 'container_init_t', 'container_kvm_t'];

const seLinux: Control = (pod) => {
  const contexts = [{ path: 'spec.securityContext', sc: pod.spec.securityContext },
    ...containersOf(pod.spec).map(({ path, container }) => ({ path: `${path}.securityContext`, sc: container.securityContext }))];
  return contexts.flatMap(({ path, sc }) => {
    const options = sc?.seLinuxOptions;
    if (!options) return [];
    const out: PodSecurityFinding[] = [];
    if (options.type !== undefined && !BASELINE_SELINUX_TYPES.includes(options.type)) {
      out.push(finding('SELinux', 'baseline', `${path}.seLinuxOptions.type`, `type ${options.type} is not allowed`));
    }
    for (const field of ['user', 'role']) {
      if (options[field] !== undefined && options[field] !== '') {
        out.push(finding('SELinux', 'baseline', `${path}.seLinuxOptions.${field}`, 'must be unset or empty'));
      }
    }
    return out;
  });
};

const procMount: Control = (pod) => containersOf(pod.spec)
  .filter(({ container }) => { const m = container.securityContext?.procMount; return m !== undefined && m !== null && m !== 'Default'; })
  .map(({ path, container }) => finding('/proc Mount Type', 'baseline', `${path}.securityContext.procMount`,
    `is ${container.securityContext.procMount}, not Default`));

const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION = 'container.seccomp.security.alpha.kubernetes.io/';

const baselineSeccomp: Control = (pod) => {
  const out: PodSecurityFinding[] = [];
  if (pod.spec.securityContext?.seccompProfile?.type === 'Unconfined') {
    out.push(finding('Seccomp', 'baseline', 'spec.securityContext.seccompProfile.type', 'must not be Unconfined'));
  }
  for (const { path, container } of containersOf(pod.spec)) {
    if (container.securityContext?.seccompProfile?.type === 'Unconfined') {
      out.push(finding('Seccomp', 'baseline', `${path}.securityContext.seccompProfile.type`, 'must not be Unconfined'));
    }
  }
  // The legacy annotations, which the API server still refuses at unconfined.
  for (const [key, value] of Object.entries<any>(pod.metadata?.annotations ?? {})) {
    if ((key === SECCOMP_POD_ANNOTATION || key.startsWith(SECCOMP_CONTAINER_ANNOTATION)) && value === 'unconfined') {
      out.push(finding('Seccomp', 'baseline', `metadata.annotations["${key}"]`, 'must not be unconfined'));
    }
  }
  return out;
};

/** The safe sysctls of profile v1.27 (net.ipv4.ip_local_reserved_ports came in v1.27). */
export const SAFE_SYSCTLS = ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports'];

const sysctls: Control = (pod) => (pod.spec.securityContext?.sysctls ?? [])
  .map((sysctl: any, i: number) => ({ sysctl, i }))
  .filter(({ sysctl }: any) => !SAFE_SYSCTLS.includes(sysctl.name))
  .map(({ sysctl, i }: any) => finding('Sysctls', 'baseline', `spec.securityContext.sysctls[${i}].name`, `${sysctl.name} is not a safe sysctl`));

// ---------------------------------------------------------------------------------------------
// Restricted

/** Volume sources a restricted pod may use. */
export const RESTRICTED_VOLUME_TYPES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

const volumeTypes: Control = (pod) => (pod.spec.volumes ?? []).flatMap((volume: any, i: number) => {
  const sources = Object.keys(volume).filter((key) => key !== 'name' && volume[key] !== undefined && volume[key] !== null);
  if (sources.length === 0) {
    return [finding('Volume Types', 'restricted', `spec.volumes[${i}]`, `volume ${volume.name} has no source`)];
  }
  return sources.filter((source) => !RESTRICTED_VOLUME_TYPES.includes(source))
    .map((source) => finding('Volume Types', 'restricted', `spec.volumes[${i}].${source}`, `volume ${volume.name} is of type ${source}`));
});

const privilegeEscalation: Control = (pod) => isWindows(pod) ? [] : containersOf(pod.spec)
  .filter(({ container }) => container.securityContext?.allowPrivilegeEscalation !== false)
  .map(({ path }) => finding('Privilege Escalation', 'restricted', `${path}.securityContext.allowPrivilegeEscalation`, 'must be false'));

const runAsNonRoot: Control = (pod) => {
  const out: PodSecurityFinding[] = [];
  const podValue = pod.spec.securityContext?.runAsNonRoot;
  if (podValue === false) out.push(finding('Running as Non-root', 'restricted', 'spec.securityContext.runAsNonRoot', 'must not be false'));
  for (const { path, container } of containersOf(pod.spec)) {
    const value = container.securityContext?.runAsNonRoot;
    if (value === false) {
      out.push(finding('Running as Non-root', 'restricted', `${path}.securityContext.runAsNonRoot`, 'must not be false'));
    } else if (value !== true && podValue !== true) {
      out.push(finding('Running as Non-root', 'restricted', `${path}.securityContext.runAsNonRoot`,
        'must be true, here or at spec.securityContext.runAsNonRoot'));
    }
  }
  return out;
};

const runAsUser: Control = (pod) => [
  { path: 'spec.securityContext', sc: pod.spec.securityContext },
  ...containersOf(pod.spec).map(({ path, container }) => ({ path: `${path}.securityContext`, sc: container.securityContext })),
].filter(({ sc }) => sc?.runAsUser === 0)
  .map(({ path }) => finding('Running as Non-root user', 'restricted', `${path}.runAsUser`, 'must not be 0'));

const RESTRICTED_SECCOMP = ['RuntimeDefault', 'Localhost'];

const restrictedSeccomp: Control = (pod) => {
  if (isWindows(pod)) return [];
  const out: PodSecurityFinding[] = [];
  const podType = pod.spec.securityContext?.seccompProfile?.type;
  if (podType !== undefined && !RESTRICTED_SECCOMP.includes(podType)) {
    out.push(finding('Seccomp', 'restricted', 'spec.securityContext.seccompProfile.type', `is ${podType}, not RuntimeDefault or Localhost`));
  }
  const podOk = RESTRICTED_SECCOMP.includes(podType);
  for (const { path, container } of containersOf(pod.spec)) {
    const type = container.securityContext?.seccompProfile?.type;
    if (type === undefined) {
      if (!podOk) {
        out.push(finding('Seccomp', 'restricted', `${path}.securityContext.seccompProfile.type`,
          'must be RuntimeDefault or Localhost, here or at spec.securityContext.seccompProfile'));
      }
    } else if (!RESTRICTED_SECCOMP.includes(type)) {
      out.push(finding('Seccomp', 'restricted', `${path}.securityContext.seccompProfile.type`, `is ${type}, not RuntimeDefault or Localhost`));
    }
  }
  return out;
};

const restrictedCapabilities: Control = (pod) => isWindows(pod) ? [] : containersOf(pod.spec).flatMap(({ path, container }) => {
  const capabilities = container.securityContext?.capabilities;
  const out: PodSecurityFinding[] = [];
  if (!(capabilities?.drop ?? []).includes('ALL')) {
    out.push(finding('Capabilities', 'restricted', `${path}.securityContext.capabilities.drop`, 'must include ALL'));
  }
  for (const cap of capabilities?.add ?? []) {
    if (cap !== 'NET_BIND_SERVICE') {
      out.push(finding('Capabilities', 'restricted', `${path}.securityContext.capabilities.add`, `adds ${cap}; only NET_BIND_SERVICE may be added`));
    }
  }
  return out;
});

/** Every control of a level, by name (a name may hold several rules, such as Seccomp). */
export const BASELINE_CONTROLS: ReadonlyArray<{ readonly id: string; readonly check: Control }> = [
  { id: 'HostProcess', check: hostProcess },
  { id: 'Host Namespaces', check: hostNamespaces },
  { id: 'Privileged Containers', check: privilegedContainers },
  { id: 'Capabilities (baseline)', check: baselineCapabilities },
  { id: 'HostPath Volumes', check: hostPathVolumes },
  { id: 'Host Ports', check: hostPorts },
  { id: 'AppArmor', check: appArmor },
  { id: 'SELinux', check: seLinux },
  { id: '/proc Mount Type', check: procMount },
  { id: 'Seccomp (baseline)', check: baselineSeccomp },
  { id: 'Sysctls', check: sysctls },
];

export const RESTRICTED_CONTROLS: ReadonlyArray<{ readonly id: string; readonly check: Control }> = [
  { id: 'Volume Types', check: volumeTypes },
  { id: 'Privilege Escalation', check: privilegeEscalation },
  { id: 'Running as Non-root', check: runAsNonRoot },
  { id: 'Running as Non-root user', check: runAsUser },
  { id: 'Seccomp (restricted)', check: restrictedSeccomp },
  { id: 'Capabilities (restricted)', check: restrictedCapabilities },
];

/** The findings of a pod template against a level (restricted includes baseline). */
export function checkPodSecurity(pod: PodTemplate, level: PodSecurityLevel = 'restricted'): PodSecurityFinding[] {
  const controls = level === 'baseline' ? BASELINE_CONTROLS : [...BASELINE_CONTROLS, ...RESTRICTED_CONTROLS];
  return controls.flatMap(({ check }) => check(pod));
}
