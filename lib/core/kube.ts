/**
 * The Kubernetes API the library renders: cdk8s-plus-27's typed low-level objects, Kubernetes
 * 1.27, the oldest release the library supports. Every room imports it from here (the linter
 * refuses it anywhere else), so moving to another API release is a change of one line.
 */
export { k8s } from 'cdk8s-plus-27';
