// Package nodeagent is twinforge's runtime verifier on a Kubernetes node:
// it checks that what each running container runs is what admission
// verified, and that it still passes.
//
// On every pass the agent asks the container runtime over the CRI
// (k8s.io/cri-api: ListContainers, ContainerStatus, ImageStatus) for the
// running containers of its node and the image each was started from, and
// the API server for the node's pods and their admission records
// (admission.Record, signed by the mutating webhook). For each container it
//
//  1. verifies the pod's record with the webhook's public key
//     (admission.VerifyRecord): a pod without one, or with one that does not
//     verify, is reported (ResultNoRecord, ResultInvalidRecord);
//  2. compares the image the runtime started the container from with the
//     digest recorded for that container. The runtime's image ID is the
//     digest of the image config, which the runtime computed from the content
//     it unpacked; the record's manifest digest names exactly one config per
//     platform (read from the registry by digest, checked, and cached). An
//     image put under the recorded name behind the registry's back has
//     another config: ResultMismatch. The repository digest the runtime
//     reports (ImageRef, from the names it keeps) is compared too;
//  3. verifies the recorded digest again, with the current policies, trusted
//     root and revocation list, through admission.Verifier, whose results
//     are cached by digest exactly as in the webhook (ResultRevoked,
//     ResultVerification).
//
// Passes run at start (so pods admitted before the agent started are
// checked), every WithInterval, when the runtime reports a container event,
// and when the policy files change. A container's status is read once per
// container: a pass where nothing changed costs one ListContainers, one
// ImageStatus per image, one list of the node's pods and cache hits.
//
// Each violation is a gauge twinforge_node_agent_violations{namespace,pod,
// container,result}, a warning in the log and a Warning Event on the pod;
// with WithOnViolation(Evict) the pod is evicted through the Eviction API,
// never deleted, so that PodDisruptionBudgets hold (a refused eviction is
// tried again on the next pass). When the agent itself cannot check a
// container (the runtime, the API server or a registry does not answer),
// that is reported as ResultError and nothing is evicted, unless the
// operator chose WithOnError(Evict) (fail closed). A pass that cannot list
// the containers or the pods keeps the violations reported before.
package nodeagent
