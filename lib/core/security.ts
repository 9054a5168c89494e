import { k8s } from './kube';

/**
 * The pod-level half of the "restricted" Pod Security Standard: a fixed non-root identity whose
 * group owns mounted volumes, and the runtime's default seccomp profile.
 */
export function restrictedPodSecurityContext(uid: number, gid: number): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    fsGroup: gid,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** The container-level half: no privilege, no capabilities, nothing written outside volumes. */
export function restrictedContainerSecurityContext(): k8s.SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
