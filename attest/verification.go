package attest

import (
	"context"
	"crypto"

	provenancepb "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/twinforge/twinforge/attest/verify"
)

// Verification, storage and trusted roots live in package attest/verify,
// which does not depend on BuildKit (an admission webhook imports it
// alone). They are re-exported here so that the build and the CLI need
// one package.

// Statement and provenance constants; see buildtype.md.
const (
	StatementType    = verify.StatementType
	PredicateType    = verify.PredicateType
	PayloadType      = verify.PayloadType
	RebuildByproduct = verify.RebuildByproduct
)

// Storage beside an OCI layout.
const (
	AttestationsDir   = verify.AttestationsDir
	ProvenanceFile    = verify.ProvenanceFile
	ImageFile         = verify.ImageFile
	SBOMFilePrefix    = verify.SBOMFilePrefix
	BundleMediaType   = verify.BundleMediaType
	TrustedRootTarget = verify.TrustedRootTarget
)

// Checks named by VerificationError.Check; see verify.CheckBundle and
// following.
const (
	CheckBundle             = verify.CheckBundle
	CheckSignature          = verify.CheckSignature
	CheckSubject            = verify.CheckSubject
	CheckCertificate        = verify.CheckCertificate
	CheckTransparencyLog    = verify.CheckTransparencyLog
	CheckTimestamp          = verify.CheckTimestamp
	CheckIdentity           = verify.CheckIdentity
	CheckProvenance         = verify.CheckProvenance
	CheckSourceRepositories = verify.CheckSourceRepositories
	CheckBuilderIDs         = verify.CheckBuilderIDs
	CheckReproduced         = verify.CheckReproduced
	CheckStrictVariations   = verify.CheckStrictVariations
	CheckMaxAge             = verify.CheckMaxAge
	CheckSBOM               = verify.CheckSBOM
	CheckRequireSBOM        = verify.CheckRequireSBOM
	CheckDeniedPackages     = verify.CheckDeniedPackages
)

// Policy file identity.
const (
	PolicyAPIVersion = verify.PolicyAPIVersion
	PolicyKind       = verify.PolicyKind
)

type (
	// VerificationError is verify.VerificationError.
	VerificationError = verify.VerificationError
	// Policy is verify.Policy.
	Policy = verify.Policy
	// VerifyRequest is verify.Request.
	VerifyRequest = verify.Request
	// Result is verify.Result.
	Result = verify.Result
	// SignerIdentity is verify.SignerIdentity.
	SignerIdentity = verify.SignerIdentity
	// VerifiedTimestamp is verify.VerifiedTimestamp.
	VerifiedTimestamp = verify.VerifiedTimestamp
	// Bundles is verify.Bundles.
	Bundles = verify.Bundles
	// TUFConfig is verify.TUFConfig.
	TUFConfig = verify.TUFConfig
	// BundleInfo is verify.BundleInfo.
	BundleInfo = verify.BundleInfo
	// LogEntryInfo is verify.LogEntryInfo.
	LogEntryInfo = verify.LogEntryInfo
)

var (
	// ErrNotSigned is verify.ErrNotSigned.
	ErrNotSigned = verify.ErrNotSigned
	// ErrInvalidPolicy is verify.ErrInvalidPolicy.
	ErrInvalidPolicy = verify.ErrInvalidPolicy
)

// Verify is verify.Verify.
func Verify(ctx context.Context, req VerifyRequest) (*Result, error) { return verify.Verify(ctx, req) }

// LoadPolicy is verify.LoadPolicy.
func LoadPolicy(path string) (*Policy, error) { return verify.LoadPolicy(path) }

// ParsePolicy is verify.ParsePolicy.
func ParsePolicy(data []byte) (*Policy, error) { return verify.ParsePolicy(data) }

// WriteBundles is verify.WriteBundles.
func WriteBundles(layoutDir string, b Bundles) error { return verify.WriteBundles(layoutDir, b) }

// ReadBundles is verify.ReadBundles.
func ReadBundles(layoutDir string) (Bundles, error) { return verify.ReadBundles(layoutDir) }

// ReadBundle is verify.ReadBundle.
func ReadBundle(path string) (*bundle.Bundle, error) { return verify.ReadBundle(path) }

// ParseBundle is verify.ParseBundle.
func ParseBundle(data []byte) (*bundle.Bundle, error) { return verify.ParseBundle(data) }

// ImageDigest is verify.ImageDigest.
func ImageDigest(layoutDir string) (string, error) { return verify.ImageDigest(layoutDir) }

// ReadManifest is verify.ReadManifest.
func ReadManifest(layoutDir, digest string) ([]byte, error) {
	return verify.ReadManifest(layoutDir, digest)
}

// LoadTrustedRoot is verify.LoadTrustedRoot.
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) { return verify.LoadTrustedRoot(path) }

// LoadTrustedRootJSON is verify.LoadTrustedRootJSON.
func LoadTrustedRootJSON(data []byte) (*root.TrustedRoot, error) {
	return verify.LoadTrustedRootJSON(data)
}

// TrustedRootFromTUF is verify.TrustedRootFromTUF.
func TrustedRootFromTUF(ctx context.Context, cfg TUFConfig) (*root.TrustedRoot, error) {
	return verify.TrustedRootFromTUF(ctx, cfg)
}

// Describe is verify.Describe.
func Describe(b *bundle.Bundle) (*BundleInfo, error) { return verify.Describe(b) }

// ParseStatement is verify.ParseStatement.
func ParseStatement(data []byte) (*intoto.Statement, error) { return verify.ParseStatement(data) }

// ProvenancePredicate is verify.ProvenancePredicate.
func ProvenancePredicate(st *intoto.Statement) (*provenancepb.Provenance, error) {
	return verify.ProvenancePredicate(st)
}

// ParsePublicKey is verify.ParsePublicKey.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) { return verify.ParsePublicKey(data) }
