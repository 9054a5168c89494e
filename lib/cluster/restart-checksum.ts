import { CLUSTER_FILES } from './cluster-layout';
import { ClusterModel } from './cluster-model';
import { patroniRestartFiles } from './patroni-config';
import { parameterSections } from './postgresql-conf';
import { configChecksum } from '../core/checksum';
import { ParameterContext } from '../core/parameter-context';

/** Contexts whose change a reload cannot apply: the server takes them only when it starts. */
const RESTART_CONTEXTS: ReadonlySet<ParameterContext> = new Set([ParameterContext.POSTMASTER, ParameterContext.INTERNAL]);

/**
 * The pod template's `checksum/config`: what a running pod cannot take without a restart, so a
 * change of it rolls the pods and any other change does not. The files themselves reach the
 * pods anyway: the kubelet refreshes ConfigMap volumes in place.
 *
 * @param configFiles the Config ConfigMap's files
 * @param scriptFiles the Scripts ConfigMap's files, which a container reads when it starts
 */
export function restartChecksum(model: ClusterModel, configFiles: { [file: string]: string }, scriptFiles: { [file: string]: string }): string {
  return model.highAvailability ? highAvailabilityChecksum(configFiles, scriptFiles) : plainChecksum(model, scriptFiles);
}

/**
 * The HA mode: the scripts and what of patroni.yml only a Patroni restart applies; the members'
 * settings agents apply the parameters, pg_hba and the dynamic configuration (patroni-settings-agent.ts).
 */
function highAvailabilityChecksum(configFiles: { [file: string]: string }, scriptFiles: { [file: string]: string }): string {
  return configChecksum({ ...patroniRestartFiles(configFiles), ...scriptFiles });
}

/**
 * The plain mode: the scripts and the parameters a restart applies (postmaster context, or one
 * the major's catalog does not know, such as an extension's: taken as needing one). The settings
 * agent reloads the rest, pg_hba.conf included, when the kubelet refreshes the files.
 */
function plainChecksum(model: ClusterModel, scriptFiles: { [file: string]: string }): string {
  const restartOnly = parameterSections(model).flatMap((section) => section.parameters).filter((parameter) => {
    const context = model.version.contexts[parameter.name];
    return context === undefined || RESTART_CONTEXTS.has(context);
  });
  return configChecksum({ ...scriptFiles, [`${CLUSTER_FILES.postgresqlConf} (restart)`]: JSON.stringify(restartOnly) });
}
