package verify

// How a build's bundles travel as OCI 1.1 referrers of the image they sign:
// the artifact type is the bundle's media type and the annotations say
// which bundle is which, as cosign's new bundle format does, so registries,
// cosign and the admission webhook can find them without downloading each.
const (
	// BundleArtifactType is the artifactType of a referrer holding a bundle.
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// AnnotationBundleContent says what the bundle signs: ContentDSSE (the
	// provenance statement) or ContentMessageSignature (the manifest).
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationPredicateType names the in-toto predicate of a DSSE bundle.
	AnnotationPredicateType = "dev.sigstore.bundle.predicateType"

	ContentDSSE             = "dsse-envelope"
	ContentMessageSignature = "message-signature"
	// PredicateSLSAProvenance1 is the predicate type of twinforge provenance.
	PredicateSLSAProvenance1 = "https://slsa.dev/provenance/v1"
)
