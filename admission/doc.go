// Package admission is twinforge's Kubernetes admission webhook: it admits a
// workload only when every image it runs carries twinforge evidence that
// verifies against the policy of the workload's namespace.
//
// The webhook answers AdmissionReview v1 requests (k8s.io/api/admission/v1)
// for Pods and the pod templates of Deployments, StatefulSets, DaemonSets,
// ReplicaSets, Jobs and CronJobs. For every container, init container and
// ephemeral container image, and the image of every image volume
// (spec.volumes[].image.reference, whose files containers mount and may
// run), it
//
//  1. finds the policies that apply: the tenants of the configuration whose
//     namespaces include the request's namespace and whose image patterns
//     include the image's repository. An image no such tenant covers is
//     denied, before the registry is contacted: one tenant's policy never
//     admits another tenant's images;
//  2. resolves a tag to a digest in the registry (an image named by digest is
//     used as is) and denies a digest of the revocation list;
//  3. fetches the image manifest and the Sigstore bundles attached to it as
//     OCI 1.1 referrers (the referrers API, or the referrers tag schema of
//     registries without it), exactly as twinforge push and twinforge build
//     --push store them;
//  4. verifies them with package attest/verify, the verifier and policy format
//     of `twinforge verify` (attest/policy.md), against the configured
//     Sigstore trusted root, for each applying tenant: all must admit.
//
// A denial names the image and the reason: the failed check of a
// *verify.VerificationError ("signature", "subject", "identity",
// "policy.requireReproduced", ...), a revoked digest, an image outside every
// tenant, an unknown image, an unreachable registry, or the deadline.
//
// # Release index
//
// With WithReleaseIndex, every image must also be released: the TUF
// release index of package distribute/release (read with go-tuf's client,
// its trusted state kept per region) must list the image's tag as the
// digest the registry resolved it to, or, for an image named by digest,
// that digest under some tag of its repository; and only the provenance
// statement the release names is verified. The index is consulted on every
// decision, cached or not, from memory; it is read again every refresh
// interval, and a read that is refused (stale, rolled back, under
// threshold) or fails keeps the last index that verified, which is itself
// refused once it expires. Until one verifies, every image is denied. Its
// refusals are denials labelled denied_release, naming the failed check.
//
// # Fail closed
//
// Everything that is not a verified image is denied: registry and Sigstore
// errors, timeouts (every review is decided within WithDeadline, 8 seconds by
// default, below the API server's 10 second webhook timeout), malformed
// objects, and kinds or operations the webhook was not configured for (the API
// server only sends what the webhook configuration's rules name, so anything
// else is a misconfiguration and is refused rather than waved through).
// Malformed AdmissionReview bodies get HTTP 400 and bodies over WithMaxBodyBytes
// HTTP 413; with failurePolicy Fail the API server then denies the request.
//
// # Cache
//
// Verification results are cached by repository, digest and policy version
// (a hash of the tenant's policy and the trusted root): positive results for
// WithCacheTTL, refusals of the evidence for WithNegativeCacheTTL, in an LRU
// bounded by WithCacheSize. Concurrent misses for the same key share one
// verification, which runs on after an impatient caller gives up, so that the
// next try finds it cached. Registry errors and timeouts are not cached. A
// policy's maxAge is therefore enforced to within the cache TTL.
// A change of the configuration, of a policy or of the trusted root empties
// the cache; the revocation list is consulted on every decision, cached or
// not, so a revoked digest is denied at once.
//
// # Reloading
//
// The configuration, the policies it names, the trusted root and the
// revocation list are re-read every WithPollInterval (and by Reload). A file
// that no longer parses is reported (log and metric) and the last good
// version stays in force.
//
// # Mutation
//
// The webhook also serves /mutate (unless WithValidationOnly): it verifies like
// /validate and answers with a JSONPatch that replaces every image named by tag
// (image volumes included) with the digest it verified, so the kubelet runs
// exactly what was verified, not what the tag points at later or what a
// registry answers the kubelet. Without mutation nothing pins a tag, so
// /validate denies images named by tag unless their tenant sets AllowTags (or
// WithAllowTagsUnsafe).
//
// # What a denial says
//
// The webhook reads registries with credentials of its own, and anything that
// reaches its port can POST a review about any image. So a denial that depends
// on what a registry holds says only that the image was not verified: not
// whether it exists, its digest, its signer or what its provenance says, which
// a caller who cannot pull the image must not learn. The reason is logged under
// the review's uid. WithDenialReasonsUnsafe puts it in the message.
//
// # Re-verification
//
// Admission decides once; what was verified may stop passing later: its
// digest is revoked, the trusted root is rotated, the policy tightens, the
// evidence ages past maxAge. With WithReverification the webhook lists the
// pods of the namespaces its tenants cover (GET /api/v1/pods, with a bearer
// token: InClusterKubeConfig in a pod) and decides every container, init
// container, ephemeral container and image volume image again, through the same decision
// as a review: same tenants, policies, trusted root, revocation list and
// cache (which a change of policy or trusted root empties, and which never
// hides a revocation). An image is verified at the digest the kubelet
// reports running (status imageID) when there is one, else as the pod spec
// names it, a tag resolved now. Pods in WithReverifyExemptNamespaces and
// finished pods are skipped.
//
// Passes run at start, every WithReverifyInterval (10 minutes by default)
// and at once when a reload changes any file; a pass that cannot list the
// pods is retried sooner. Each image that no longer passes (fail closed: a
// registry that does not answer is a failure too, labelled as such) is
// reported as the gauge twinforge_admission_runtime_violations{namespace,
// pod,image,digest,result}, a warning in the log and a Warning Event
// (EventReasonVerificationFailed, source EventSourceComponent) on the pod;
// an Event is named after the violation, so replicas and later passes count
// occurrences on one Event. The gauge clears when the image passes again or
// the pod is gone. PathReverify serves the last report as JSON, and
// Webhook.Reverify runs a pass on demand (`twinforge admission reverify
// --once`).
//
// # Admission records
//
// With WithRecordKey the mutating webhook also signs, onto every pod it
// admits, a Record of what it verified: each container's (init, ephemeral,
// image volume) pinned image and digest and the tenants whose policies
// passed, with the policy version (AnnotationRecord, AnnotationRecordSignature,
// Ed25519). The record binds the namespace and the containers, not the pod's
// name or UID, which the API server assigns after mutating admission; an
// UPDATE that changes no image gets the old record back. VerifyRecord checks
// one with the public key; the node agent (package admission/nodeagent)
// compares what the container runtime runs with it.
//
// # Pull secrets and leader election
//
// With WithImagePullSecrets registries are reached with the pod's
// imagePullSecrets and its service account's pull secrets, read through the
// API server, before the WithKeychain credentials; such requests share no
// authentication state with other pods'. With WithReverifyLeaderElection the
// replicas elect, with a Lease, the one that runs the background
// re-verification passes.
//
// NewVerifier returns the decision alone, without serving (Verifier): the
// node agent verifies running images through it, with the same cache.
//
// # Serving
//
// The handler New returns routes /validate, /mutate, /healthz and /readyz.
// Its Monitoring handler routes /metrics (Prometheus: requests, decisions by
// result, cache hits and misses, latency histograms, re-verification runs and
// violations) and /reverify, which tell about every namespace and so are never
// served on the webhook's port. Serve runs the webhook over HTTPS with
// certificate reloading and graceful shutdown, and the monitoring handler on a
// listener of its own: loopback, or any address behind a bearer token.
// Manifests produces the webhook configurations, Deployment and Service to
// install it, and the ServiceAccount and RBAC of re-verification. The package logs through the slog
// logger given to WithLogger and never prints.
//
// ServerSettings, ReverifySettings, KubeAccess and RegistryAccess are the
// settings of `twinforge admission serve` and `reverify` as plain structs:
// their Options check them (files that cannot be read, malformed
// addresses, settings that contradict each other) and fail with a
// *ConfigError naming the flag at fault, and ServerSettings.ListenAndServe
// opens the listeners they name.
//
// The package imports neither BuildKit nor containerd (depcheck test).
package admission
