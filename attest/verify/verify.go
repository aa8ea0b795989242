package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 message digests
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	provenancepb "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/types/known/structpb"
)

// Request is what Verify checks.
type Request struct {
	// Digest is the image manifest digest the evidence must be about
	// ("sha256:<hex>"). Required.
	Digest string
	// ImageManifest, when given, are the manifest's bytes: their sha256 must
	// be Digest, and the image signature is checked over them. Without it
	// the image signature is checked over Digest, which only a SHA-256
	// message signature can be (not one made with an ECDSA P-384/P-521 or
	// Ed25519 key).
	ImageManifest []byte
	// Provenance is the bundle of the provenance statement. Required unless
	// the image is unsigned (then Verify refuses with Check "signature").
	Provenance *bundle.Bundle
	// Image is the bundle of the image manifest signature; optional (the
	// provenance alone binds the digest), verified when present.
	Image *bundle.Bundle
	// Verdicts are bundles of rebuild verdicts about the image (predicate
	// PredicateRebuildVerdict, see attest/verdict.md), from whoever
	// published them. They are looked at only when the policy sets
	// requireReproduced: each that verifies, is signed by one of its
	// identities, names Digest and says "reproduced" counts once per
	// distinct signer; the others are reported in Result.RebuildVerdicts
	// and do not count.
	Verdicts []*bundle.Bundle
	// SBOMs are bundles of SBOM attestations about the image (in-toto
	// statements with predicate type https://spdx.dev/Document or
	// https://cyclonedx.org/bom). Each must verify like the provenance
	// (signer among the policy's identities, subject the image's digest);
	// the policy's requireSBOM and deniedPackages judge what they list.
	SBOMs []*bundle.Bundle
	// TrustedRoot holds the certificate authorities, timestamp authorities
	// and transparency logs to trust. Required unless the policy trusts
	// public keys only and requires neither timestamps nor a log.
	TrustedRoot root.TrustedMaterial
	// Policy says whom to trust and what the provenance must say. Required.
	Policy *Policy
	// Now is the time of the verification, for maxAge and for a
	// certificate with no trusted timestamp. The default is time.Now().
	Now time.Time
}

// SignerIdentity is who signed a bundle: a Fulcio certificate's OIDC
// issuer and subject, or a public key.
type SignerIdentity struct {
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	// PublicKey is the key hint (base64 sha256 of the PKIX key) of a
	// key-signed bundle.
	PublicKey string `json:"publicKey,omitempty"`
	// SourceRepository is the repository a Fulcio certificate says its
	// token was issued for (GitHub Actions sets it), if it says.
	SourceRepository string `json:"sourceRepository,omitempty"`
}

// who is the identity without what its certificate says about the
// repository it signed in: one signer, whichever run it was.
func (s SignerIdentity) who() SignerIdentity {
	return SignerIdentity{Issuer: s.Issuer, Subject: s.Subject, PublicKey: s.PublicKey}
}

func (s SignerIdentity) String() string {
	if s.PublicKey != "" {
		return "public key " + s.PublicKey
	}
	return s.Subject + " (issuer " + s.Issuer + ")"
}

// VerifiedTimestamp is a time a trusted party vouches the signature
// existed at.
type VerifiedTimestamp struct {
	// Kind is "timestamp-authority" (RFC 3161) or "transparency-log"
	// (a Rekor v1 integrated time).
	Kind string    `json:"kind"`
	URI  string    `json:"uri,omitempty"`
	Time time.Time `json:"time"`
}

// Result is what Verify established.
type Result struct {
	// Digest is the verified image digest.
	Digest string `json:"digest"`
	// Identity signed the provenance.
	Identity SignerIdentity `json:"identity"`
	// ImageSigned is true when an image signature was verified too, by
	// ImageIdentity.
	ImageSigned   bool           `json:"imageSigned"`
	ImageIdentity SignerIdentity `json:"imageIdentity,omitzero"`
	// Statement is the verified provenance statement; Provenance its
	// predicate.
	Statement  *intoto.Statement        `json:"-"`
	Provenance *provenancepb.Provenance `json:"-"`
	// BuildType, BuilderID, SourceRepository and SourceRef are read from
	// the provenance.
	BuildType        string `json:"buildType"`
	BuilderID        string `json:"builderId"`
	SourceRepository string `json:"sourceRepository,omitempty"`
	SourceRef        string `json:"sourceRef,omitempty"`
	// Reproduced is true when the provenance records a rebuild with the
	// same digest; RebuildDigest is the rebuild's digest if any.
	Reproduced    bool   `json:"reproduced"`
	RebuildDigest string `json:"rebuildDigest,omitempty"`
	// StrictVariations is whether the rebuild also varied what BuildKit
	// pins (umask, time zone): "off", "warn" or "fail"; empty when the
	// provenance does not say (written before it could).
	StrictVariations string `json:"strictVariations,omitempty"`
	// DecidingVariations decided the verdict; WarnedVariations were varied
	// but could only warn, and VariationWarnings are what they changed.
	DecidingVariations []string `json:"decidingVariations,omitempty"`
	WarnedVariations   []string `json:"warnedVariations,omitempty"`
	VariationWarnings  []string `json:"variationWarnings,omitempty"`
	// FinishedOn is the build's end according to the provenance.
	FinishedOn time.Time `json:"finishedOn,omitzero"`
	// Timestamps are the verified times of the provenance signature.
	Timestamps []VerifiedTimestamp `json:"timestamps,omitempty"`
	// TransparencyLogEntries counts the verified log entries of the
	// provenance bundle.
	TransparencyLogEntries int `json:"transparencyLogEntries"`
	// RebuildVerdicts are the verdicts looked at for the policy's
	// requireReproduced, in the order given, counted or not;
	// ReproducedBy the distinct trusted rebuilders whose verdicts counted.
	RebuildVerdicts []VerdictResult  `json:"rebuildVerdicts,omitempty"`
	ReproducedBy    []SignerIdentity `json:"reproducedBy,omitempty"`
	// SBOMs are the SBOM attestations that verified.
	SBOMs []SBOMResult `json:"sboms,omitempty"`
}

// Verify checks an image's evidence: each bundle's signature over what it
// carries, that it is about req.Digest, its certificate chain, its log
// entry and its timestamps against req.TrustedRoot, that its signer is one
// of the policy's identities, and then what the provenance says against
// the policy (source repository, builder, rebuild, age). sigstore-go's
// verifier finally checks each bundle as a whole, so nothing it would
// refuse passes.
//
// A refusal is a *VerificationError naming the failed check; any other
// error means the request itself is unusable.
func Verify(ctx context.Context, req Request) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.Policy == nil {
		return nil, errors.New("verifying: no policy: verification needs the identities to expect")
	}
	if !sha256Digest.MatchString(req.Digest) {
		return nil, fmt.Errorf("verifying: digest %q: want sha256:<64 hex digits>", req.Digest)
	}
	tm := req.TrustedRoot
	if tm == nil {
		if req.Policy.NeedsTrustedRoot() {
			return nil, errors.New("verifying: no trusted root (give --trusted-root or --tuf-url)")
		}
		tm = &root.BaseTrustedMaterial{}
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	if req.Provenance == nil && req.Image == nil {
		return nil, refuse(CheckSignature, fmt.Errorf("%w: no provenance or image bundle for %s", ErrNotSigned, req.Digest))
	}
	if req.Provenance == nil {
		return nil, refusef(CheckProvenance, "image %s is signed but has no provenance attestation", req.Digest)
	}
	digestBytes, _ := hex.DecodeString(strings.TrimPrefix(req.Digest, "sha256:"))
	if req.ImageManifest != nil {
		sum := sha256.Sum256(req.ImageManifest)
		if !bytes.Equal(sum[:], digestBytes) {
			return nil, refusef(CheckSubject, "the manifest given has digest sha256:%x, not %s", sum, req.Digest)
		}
	}
	v := &bundleVerifier{tm: tm, policy: req.Policy, identities: req.Policy.identities, digest: req.Digest, digestBytes: digestBytes, now: now}

	prov, err := v.verify(req.Provenance, "provenance", nil)
	if err != nil {
		return nil, err
	}
	v.builder = prov
	res := &Result{
		Digest:                 req.Digest,
		Identity:               prov.identity,
		Statement:              prov.statement,
		Timestamps:             prov.timestamps,
		TransparencyLogEntries: prov.tlogEntries,
	}
	if req.Image != nil {
		img, err := v.verify(req.Image, "image", req.ImageManifest)
		if err != nil {
			return nil, err
		}
		res.ImageSigned, res.ImageIdentity = true, img.identity
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkProvenancePolicy(res, req.Policy, now); err != nil {
		return nil, err
	}
	if err := checkRebuildVerdicts(res, v, req.Verdicts, req.Policy.rebuildVerdicts); err != nil {
		return nil, err
	}
	if err := checkSBOMs(res, v, req.SBOMs, req.Policy); err != nil {
		return nil, err
	}
	return res, nil
}

type bundleVerifier struct {
	tm     root.TrustedMaterial
	policy *Policy
	// identities are the signers accepted: the policy's identities, or its
	// rebuilder identities for verdicts.
	identities  []policyIdentity
	digest      string
	digestBytes []byte
	now         time.Time
	// builder is the verified provenance bundle, once it is: rebuild
	// verdicts must vouch for it, and must not come from its signer.
	builder *bundleResult
}

// matchingIdentities are the indexes of the identities a signer is: those
// its certificate's summary satisfies, or those of its key hint.
func matchingIdentities(ids []policyIdentity, summary *certificate.Summary, keyHint string) []int {
	var out []int
	for i, id := range ids {
		switch {
		case summary != nil && id.cert != nil:
			if _, err := (sgverify.CertificateIdentities{*id.cert}).Verify(*summary); err == nil {
				out = append(out, i)
			}
		case summary == nil && id.publicKey != nil && id.keyHint == keyHint:
			out = append(out, i)
		}
	}
	return out
}

type bundleResult struct {
	identity SignerIdentity
	// summary is the signing certificate's, nil for a key.
	summary *certificate.Summary
	// matched are the indexes of the verifier's identities the signer is.
	matched     []int
	statement   *intoto.Statement
	payload     []byte // the DSSE payload: the statement's signed bytes
	timestamps  []VerifiedTimestamp
	tlogEntries int
}

// verify checks one bundle. kind is "provenance" or "verdict" (a DSSE
// statement) or "image" (a message signature over the manifest).
func (v *bundleVerifier) verify(b *bundle.Bundle, kind string, manifest []byte) (*bundleResult, error) {
	fail := func(check string, format string, args ...any) error {
		return refusef(check, kind+" bundle: "+format, args...)
	}
	if b == nil || b.Bundle == nil {
		return nil, fail(CheckBundle, "missing")
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fail(CheckBundle, "%v", err)
	}
	sc, err := b.SignatureContent()
	if err != nil {
		return nil, fail(CheckBundle, "%v", err)
	}
	env, msg := sc.EnvelopeContent(), sc.MessageSignatureContent()
	switch {
	case kind != "image" && env == nil:
		return nil, fail(CheckBundle, "holds a message signature, not a DSSE envelope of a statement")
	case kind == "image" && msg == nil:
		return nil, fail(CheckBundle, "holds a DSSE envelope, not a signature of the image manifest")
	}

	res := &bundleResult{}
	tm := v.tm
	leaf := vc.Certificate()

	// Who signed, and does the signature hold over what the bundle carries?
	checkSig := func(tm root.TrustedMaterial) error {
		if env != nil {
			return sgverify.VerifySignature(sc, vc, tm)
		}
		return sgverify.VerifySignatureWithArtifactDigests(sc, vc, tm, []sgverify.ArtifactDigest{{Algorithm: msg.DigestAlgorithm(), Digest: msg.Digest()}})
	}
	var keyMaterial root.TrustedMaterial
	if leaf != nil {
		if err := checkSig(tm); err != nil {
			return nil, fail(CheckSignature, "the signature does not verify with the certificate's key: %v", err)
		}
	} else {
		hint := vc.PublicKey().Hint()
		keys := slices.DeleteFunc(slices.Clone(v.identities), func(id policyIdentity) bool { return id.publicKey == nil })
		if len(keys) == 0 {
			return nil, fail(CheckIdentity, "signed with a public key (hint %q), and the policy allows no public key", hint)
		}
		// The key whose hint the bundle names first, then the others.
		slices.SortStableFunc(keys, func(a, b policyIdentity) int {
			switch {
			case a.keyHint == hint && b.keyHint != hint:
				return -1
			case b.keyHint == hint && a.keyHint != hint:
				return 1
			}
			return 0
		})
		var lastErr error
		for _, id := range keys {
			km, err := PublicKeyMaterial(id.publicKey)
			if err != nil {
				return nil, err
			}
			if lastErr = checkSig(km); lastErr == nil {
				keyMaterial = km
				res.identity = SignerIdentity{PublicKey: id.keyHint}
				res.matched = matchingIdentities(v.identities, nil, id.keyHint)
				break
			}
			if id.keyHint == hint {
				return nil, fail(CheckSignature, "the signature does not verify with the public key %s: %v", hint, lastErr)
			}
		}
		if keyMaterial == nil {
			return nil, fail(CheckIdentity, "signed with a public key (hint %q) that is none of the policy's keys", hint)
		}
		tm = root.TrustedMaterialCollection{v.tm, keyMaterial}
	}

	// Is it about this image?
	if env != nil {
		raw := env.RawEnvelope()
		if raw.PayloadType != PayloadType {
			return nil, fail(CheckProvenance, "payload type %q is not %s", raw.PayloadType, PayloadType)
		}
		payload, err := decodeBase64(raw.Payload)
		if err != nil {
			return nil, fail(CheckBundle, "envelope payload: %v", err)
		}
		st, err := ParseStatement(payload)
		if err != nil {
			return nil, fail(CheckProvenance, "%v", err)
		}
		if !SubjectHasDigest(st, v.digest) {
			return nil, fail(CheckSubject, "the statement is about %s, not %s", subjectDigests(st), v.digest)
		}
		res.statement, res.payload = st, payload
	} else {
		switch alg := msg.DigestAlgorithm(); {
		case alg == "SHA2_256":
			if !bytes.Equal(msg.Digest(), v.digestBytes) {
				return nil, fail(CheckSubject, "the signature is over sha256:%x, not %s", msg.Digest(), v.digest)
			}
		case manifest != nil:
			h, ok := messageHashes[alg]
			if !ok {
				return nil, fail(CheckBundle, "unsupported message digest algorithm %s", alg)
			}
			hh := h.New()
			hh.Write(manifest)
			if !bytes.Equal(hh.Sum(nil), msg.Digest()) {
				return nil, fail(CheckSubject, "the signature is over %s %x, not over the manifest of %s", alg, msg.Digest(), v.digest)
			}
		default:
			return nil, fail(CheckSubject, "the signature is over a %s digest: the manifest bytes are needed to relate it to %s", alg, v.digest)
		}
	}

	// Does the certificate chain to a trusted Fulcio?
	var summary certificate.Summary
	if leaf != nil {
		if _, err := sgverify.VerifyLeafCertificate(leaf.NotBefore, stripSANExtension(leaf), v.tm); err != nil {
			return nil, fail(CheckCertificate, "the certificate for %s was not issued by a trusted certificate authority: %v", certSubject(leaf), err)
		}
		if summary, err = certificate.SummarizeCertificate(leaf); err != nil {
			return nil, fail(CheckCertificate, "reading the certificate: %v", err)
		}
		res.identity = SignerIdentity{Issuer: summary.Issuer, Subject: summary.SubjectAlternativeName, SourceRepository: summary.Extensions.SourceRepositoryURI}
	}

	// Was it logged?
	entries, err := b.TlogEntries()
	if err != nil {
		return nil, fail(CheckTransparencyLog, "%v", err)
	}
	var logTimes []root.Timestamp
	switch {
	case len(entries) > 0:
		logTimes, err = sgverify.VerifyTlogEntry(b, tm, 1, true)
		if err != nil {
			return nil, fail(CheckTransparencyLog, "the log entry does not verify against a trusted log: %v", err)
		}
		res.tlogEntries = len(entries)
	case v.policy.requireTransparencyLog:
		return nil, fail(CheckTransparencyLog, "no transparency log entry, and the policy requires one")
	}

	// When was it signed?
	signedTimestamps, err := b.Timestamps()
	if err != nil {
		return nil, fail(CheckTimestamp, "%v", err)
	}
	var times []VerifiedTimestamp
	switch {
	case len(signedTimestamps) > 0:
		ts, err := sgverify.VerifySignedTimestampWithThreshold(b, tm, 1)
		if err != nil {
			return nil, fail(CheckTimestamp, "the signed timestamp does not verify against a trusted timestamp authority: %v", err)
		}
		for _, t := range ts {
			times = append(times, VerifiedTimestamp{Kind: "timestamp-authority", URI: t.URI, Time: t.Time})
		}
	case v.policy.requireSignedTimestamp:
		return nil, fail(CheckTimestamp, "no signed timestamp, and the policy requires one")
	}
	for _, t := range logTimes {
		times = append(times, VerifiedTimestamp{Kind: "transparency-log", URI: t.URI, Time: t.Time})
	}
	res.timestamps = times
	if leaf != nil {
		if len(times) == 0 {
			if v.now.Before(leaf.NotBefore) || v.now.After(leaf.NotAfter) {
				return nil, fail(CheckTimestamp, "no trusted timestamp, and the certificate is valid only from %s to %s, not now (%s)", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), v.now.UTC().Format(time.RFC3339))
			}
		}
		for _, t := range times {
			if t.Time.Before(leaf.NotBefore) || t.Time.After(leaf.NotAfter) {
				return nil, fail(CheckTimestamp, "signed at %s (%s), outside the certificate's validity %s to %s", t.Time.UTC().Format(time.RFC3339), t.Kind, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}

	// Is the signer allowed?
	var certIDs sgverify.CertificateIdentities
	for _, id := range v.identities {
		if id.cert != nil {
			certIDs = append(certIDs, *id.cert)
		}
	}
	if leaf != nil {
		if len(certIDs) == 0 {
			return nil, fail(CheckIdentity, "signed by %s, and the policy allows public keys only", res.identity)
		}
		if _, err := certIDs.Verify(summary); err != nil {
			return nil, fail(CheckIdentity, "signed by %s, which is none of the policy's identities (%s)", res.identity, strings.Join(describeIdentities(v.identities), "; "))
		}
		res.summary = &summary
		res.matched = matchingIdentities(v.identities, &summary, "")
	}

	// Finally the whole bundle, by sigstore-go's rules.
	var vopts []sgverify.VerifierOption
	if len(entries) > 0 {
		vopts = append(vopts, sgverify.WithTransparencyLog(1))
	}
	switch {
	case len(signedTimestamps) > 0:
		vopts = append(vopts, sgverify.WithSignedTimestamps(1))
	case len(logTimes) > 0:
		vopts = append(vopts, sgverify.WithIntegratedTimestamps(1))
	case leaf != nil:
		vopts = append(vopts, sgverify.WithCurrentTime())
	default:
		vopts = append(vopts, sgverify.WithNoObserverTimestamps())
	}
	sv, err := sgverify.NewVerifier(tm, vopts...)
	if err != nil {
		return nil, fmt.Errorf("configuring verifier: %w", err)
	}
	artifact := sgverify.WithArtifactDigest("sha256", v.digestBytes)
	if manifest != nil {
		artifact = sgverify.WithArtifact(bytes.NewReader(manifest))
	}
	idOpt := sgverify.WithKey()
	if leaf != nil {
		var opts []sgverify.PolicyOption
		for _, ci := range certIDs {
			opts = append(opts, sgverify.WithCertificateIdentity(ci))
		}
		idOpt = func(pc *sgverify.PolicyConfig) error {
			for _, o := range opts {
				if err := o(pc); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if _, err := sv.Verify(b, sgverify.NewPolicy(artifact, idOpt)); err != nil {
		return nil, fail(CheckSignature, "%v", err)
	}
	return res, nil
}

// stripSANExtension returns a copy of a Fulcio certificate without the
// critical OtherName SAN extension Go's verifier does not handle, as
// sigstore-go's verifier does.
func stripSANExtension(c *x509.Certificate) *x509.Certificate {
	if len(c.UnhandledCriticalExtensions) == 0 {
		return c
	}
	cp := *c
	cp.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(c.UnhandledCriticalExtensions), func(oid asn1.ObjectIdentifier) bool {
		return cryptoutils.SANOID.Equal(oid)
	})
	return &cp
}

func certSubject(c *x509.Certificate) string {
	if s, err := certificate.SummarizeCertificate(c); err == nil && s.SubjectAlternativeName != "" {
		return s.SubjectAlternativeName
	}
	return c.Subject.String()
}

func subjectDigests(st *intoto.Statement) string {
	var ds []string
	for _, s := range st.GetSubject() {
		for alg, d := range s.GetDigest() {
			ds = append(ds, alg+":"+d)
		}
	}
	if len(ds) == 0 {
		return "no digest"
	}
	return strings.Join(ds, ", ")
}

// checkProvenancePolicy reads the verified provenance into res and judges
// it by the policy.
func checkProvenancePolicy(res *Result, p *Policy, now time.Time) error {
	st := res.Statement
	if st.GetPredicateType() != PredicateType {
		return refusef(CheckProvenance, "predicate type %q is not %s", st.GetPredicateType(), PredicateType)
	}
	prov, err := ProvenancePredicate(st)
	if err != nil {
		return refuse(CheckProvenance, err)
	}
	res.Provenance = prov
	res.BuildType = prov.GetBuildDefinition().GetBuildType()
	res.BuilderID = prov.GetRunDetails().GetBuilder().GetId()
	if src := prov.GetBuildDefinition().GetExternalParameters().GetFields()["source"].GetStructValue(); src != nil {
		res.SourceRepository = src.GetFields()["repository"].GetStringValue()
		res.SourceRef = src.GetFields()["ref"].GetStringValue()
	}
	for _, bp := range prov.GetRunDetails().GetByproducts() {
		if bp.GetName() != RebuildByproduct {
			continue
		}
		if d := bp.GetDigest()["sha256"]; d != "" {
			res.RebuildDigest = "sha256:" + d
		}
		ann := bp.GetAnnotations().GetFields()
		claimed := ann["reproduced"].GetBoolValue()
		res.Reproduced = claimed && res.RebuildDigest == res.Digest
		res.StrictVariations = ann["strictVariations"].GetStringValue()
		res.DecidingVariations = stringValues(ann["decidingVariations"])
		res.WarnedVariations = stringValues(ann["warnedVariations"])
		res.VariationWarnings = stringValues(ann["warnings"])
	}
	if fo := prov.GetRunDetails().GetMetadata().GetFinishedOn(); fo != nil {
		res.FinishedOn = fo.AsTime()
	}

	// A certificate that names the repository it was issued for (GitHub
	// Actions tokens do, whoever wrote the lock) must agree with the
	// provenance: a provenance naming another repository is forged.
	if cert := res.Identity.SourceRepository; cert != "" && res.SourceRepository != "" && !SameRepository(cert, res.SourceRepository) {
		return refusef(CheckSourceRepositories, "the provenance names source repository %s but its signing certificate was issued for %s", res.SourceRepository, cert)
	}
	if len(p.sourceRepositories) > 0 {
		switch {
		case res.SourceRepository == "":
			return refusef(CheckSourceRepositories, "the provenance names no source repository; the policy allows %s", patternList(p.sourceRepositories))
		case !matchAny(p.sourceRepositories, res.SourceRepository):
			return refusef(CheckSourceRepositories, "source repository %s is not allowed (allowed: %s)", res.SourceRepository, patternList(p.sourceRepositories))
		}
	}
	if len(p.builderIDs) > 0 && !matchAny(p.builderIDs, res.BuilderID) {
		return refusef(CheckBuilderIDs, "builder %q is not allowed (allowed: %s)", res.BuilderID, patternList(p.builderIDs))
	}
	if p.requireStrict {
		if err := checkStrict(res); err != nil {
			return err
		}
	}
	if p.maxAge > 0 {
		// finishedOn is the signer's own word: a time after now, or after a
		// trusted party saw the signature, would make the build young for
		// ever.
		if fo := res.FinishedOn; !fo.IsZero() {
			if fo.After(now.Add(maxClockSkew)) {
				return refusef(CheckMaxAge, "the provenance says the build finished at %s, in the future (now %s): its age cannot be trusted", fo.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			}
			for _, ts := range res.Timestamps {
				if fo.After(ts.Time.Add(maxClockSkew)) {
					return refusef(CheckMaxAge, "the provenance says the build finished at %s, after it was signed (%s, %s)", fo.UTC().Format(time.RFC3339), ts.Time.UTC().Format(time.RFC3339), ts.Kind)
				}
			}
		}
		built, from := buildTime(res)
		if built.IsZero() {
			return refusef(CheckMaxAge, "the provenance has no finishedOn and the signature no trusted timestamp: the build's age is unknown")
		}
		if age := now.Sub(built); age > p.maxAge {
			return refusef(CheckMaxAge, "built %s ago (%s, %s), older than the policy's maxAge %s", age.Round(time.Second), built.UTC().Format(time.RFC3339), from, p.maxAge)
		}
	}
	return nil
}

// maxClockSkew is how far the builder's clock may run ahead of the
// verifier's, or of a timestamp authority's, before its finishedOn is
// refused as a time to come.
const maxClockSkew = 5 * time.Minute

// checkStrict refuses a provenance that does not record a reproduced
// rebuild under the variations BuildKit pins, one those variations
// changed, or one written before provenance recorded them.
func checkStrict(res *Result) error {
	const hint = "build with --strict-variations"
	switch {
	case res.RebuildDigest == "":
		return refusef(CheckStrictVariations, "the provenance records no rebuild, so none under strict variations; %s", hint)
	case !res.Reproduced:
		return refusef(CheckStrictVariations, "the rebuild produced %s, not %s", res.RebuildDigest, res.Digest)
	case res.StrictVariations == "":
		return refusef(CheckStrictVariations, "the provenance does not say whether the variations BuildKit pins (umask, time zone) were varied; %s", hint)
	case res.StrictVariations == "off":
		return refusef(CheckStrictVariations, "the rebuild did not vary what BuildKit pins (umask, time zone); %s", hint)
	case len(res.VariationWarnings) > 0:
		shown := res.VariationWarnings
		more := ""
		if len(shown) > 3 {
			shown, more = shown[:3], fmt.Sprintf(" and %d more", len(res.VariationWarnings)-3)
		}
		return refusef(CheckStrictVariations, "the image changes under the variations BuildKit pins: %s%s", strings.Join(shown, "; "), more)
	}
	return nil
}

// stringValues is a list annotation's strings.
func stringValues(v *structpb.Value) []string {
	var out []string
	for _, x := range v.GetListValue().GetValues() {
		if s := x.GetStringValue(); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// buildTime is the earliest of the provenance's finishedOn and the
// verified timestamps: the build is at least that old.
func buildTime(res *Result) (time.Time, string) {
	t, from := res.FinishedOn, "finishedOn"
	for _, ts := range res.Timestamps {
		if t.IsZero() || ts.Time.Before(t) {
			t, from = ts.Time, ts.Kind
		}
	}
	return t, from
}

var messageHashes = map[string]crypto.Hash{"SHA2_256": crypto.SHA256, "SHA2_384": crypto.SHA384, "SHA2_512": crypto.SHA512}

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

// SameRepository reports whether two repository URLs name the same
// repository, as provenance, certificates, git remotes and GitHub write
// them: case, a "git+" prefix, a ".git" suffix and a trailing slash aside,
// and an scp-like SSH remote (git@github.com:org/app.git) the same as its
// HTTPS URL (https://github.com/org/app).
func SameRepository(a, b string) bool {
	return normalizeRepository(a) == normalizeRepository(b)
}

func normalizeRepository(s string) string {
	s = strings.ToLower(strings.TrimPrefix(strings.ToLower(s), "git+"))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
	if userHost, path, ok := strings.Cut(s, ":"); ok && !strings.Contains(userHost, "/") && strings.Contains(userHost, "@") && !strings.HasPrefix(path, "//") {
		_, host, _ := strings.Cut(userHost, "@")
		s = "https://" + host + "/" + strings.TrimPrefix(path, "/")
	}
	return s
}
