package verify

import (
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// SignedByPolicyIdentity reports whether a bundle is signed by one of the
// policy's identities as far as the signer alone tells, cheaply: its
// certificate chains to a certificate authority of tm and names one of the
// identities, or its signature verifies with one of the policy's keys. It
// checks neither what the bundle is about nor its log entry or timestamps:
// Verify decides. It lets a caller holding many bundles, some put there by
// anyone (a registry's referrers), pick those worth verifying first, so
// that junk beside the real bundles cannot crowd them out.
func (p *Policy) SignedByPolicyIdentity(b *bundle.Bundle, tm root.TrustedMaterial) bool {
	return signedBy(b, tm, p.identities)
}

// SignedByRebuilder is SignedByPolicyIdentity for rebuild verdicts: signed
// by one of the rebuilders of requireReproduced. It is false when the
// policy requires no verdicts.
func (p *Policy) SignedByRebuilder(b *bundle.Bundle, tm root.TrustedMaterial) bool {
	if p.rebuildVerdicts == nil {
		return false
	}
	return signedBy(b, tm, p.rebuildVerdicts.identities)
}

func signedBy(b *bundle.Bundle, tm root.TrustedMaterial, ids []policyIdentity) bool {
	if b == nil || b.Bundle == nil {
		return false
	}
	if tm == nil {
		tm = &root.BaseTrustedMaterial{}
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return false
	}
	if leaf := vc.Certificate(); leaf != nil {
		if _, err := sgverify.VerifyLeafCertificate(leaf.NotBefore, stripSANExtension(leaf), tm); err != nil {
			return false
		}
		summary, err := certificate.SummarizeCertificate(leaf)
		if err != nil {
			return false
		}
		for _, id := range ids {
			if id.cert != nil {
				if _, err := (sgverify.CertificateIdentities{*id.cert}).Verify(summary); err == nil {
					return true
				}
			}
		}
		return false
	}
	sc, err := b.SignatureContent()
	if err != nil {
		return false
	}
	for _, id := range ids {
		if id.publicKey == nil {
			continue
		}
		km, err := PublicKeyMaterial(id.publicKey)
		if err != nil {
			continue
		}
		if env := sc.EnvelopeContent(); env != nil {
			if sgverify.VerifySignature(sc, vc, km) == nil {
				return true
			}
		} else if msg := sc.MessageSignatureContent(); msg != nil {
			if sgverify.VerifySignatureWithArtifactDigests(sc, vc, km, []sgverify.ArtifactDigest{{Algorithm: msg.DigestAlgorithm(), Digest: msg.Digest()}}) == nil {
				return true
			}
		}
	}
	return false
}
