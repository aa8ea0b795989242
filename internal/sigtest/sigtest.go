// Package sigtest makes Sigstore evidence for tests, good and forged: v0.3
// bundles whose certificates come from an in-memory Fulcio certificate
// authority, timestamped by and logged in sigstore-go's VirtualSigstore
// (pkg/testing/ca), with every field a test may want to bend (who the
// certificate names, when it is valid, when the log says it saw the
// signature, whether there is a timestamp or a log entry at all), and the
// trusted roots to check them against, complete or missing a part.
//
// It is for unit tests of edge cases only: the proof that signing and
// verification work is the real stack (internal/sigstack). Everything
// lives in memory and is valid for a few minutes around its creation, as
// the VirtualSigstore's timestamp authority is.
package sigtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/pki"
	"github.com/sigstore/rekor/pkg/types"
	dsseentry "github.com/sigstore/rekor/pkg/types/dsse"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1" // the entries of DSSE envelopes
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // the entries of message signatures
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/proto"
)

// BundleMediaType is the media type of the bundles Authority makes.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Authority is one Sigstore deployment in memory: a Fulcio certificate
// authority of its own (so that tests choose each certificate's validity
// and extensions) and a VirtualSigstore for the timestamp authority and
// the transparency log. It is safe for concurrent use.
type Authority struct {
	mu       sync.Mutex // guards serial
	vs       *ca.VirtualSigstore
	rootCert *x509.Certificate
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
	created  time.Time
	serial   int64
}

// New makes an Authority. Its CA certificates are valid for a day either
// side of now, its timestamp authority's for five minutes.
func New() (*Authority, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, fmt.Errorf("virtual sigstore: %w", err)
	}
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sigtest fulcio root", Organization: []string{"twinforge.test"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	rootCert, err := createCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	inter, err := createCert(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sigtest fulcio intermediate", Organization: []string{"twinforge.test"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}, rootCert, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	return &Authority{vs: vs, rootCert: rootCert, inter: inter, interKey: interKey, created: now, serial: 10}, nil
}

func createCert(tmpl, parent *x509.Certificate, pub any, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// TrustedRoot trusts all of the Authority: its certificate authority,
// timestamp authority and log.
func (a *Authority) TrustedRoot() (*root.TrustedRoot, error) { return TrustedRootOf(a, a, a) }

// TrustedRootOf is a trusted root holding the certificate authority of
// fulcio, the timestamp authority of tsa and the log of rekor; a nil
// Authority leaves that part out.
func TrustedRootOf(fulcio, tsa, rekor *Authority) (*root.TrustedRoot, error) {
	var cas []root.CertificateAuthority
	if fulcio != nil {
		cas = append(cas, &root.FulcioCertificateAuthority{
			Root: fulcio.rootCert, Intermediates: []*x509.Certificate{fulcio.inter},
			ValidityPeriodStart: fulcio.created.Add(-24 * time.Hour), URI: "https://fulcio.sigtest.invalid",
		})
	}
	var tsas []root.TimestampingAuthority
	if tsa != nil {
		tsas = tsa.vs.TimestampingAuthorities()
	}
	logs := map[string]*root.TransparencyLog{}
	if rekor != nil {
		for id, l := range rekor.vs.RekorLogs() {
			// The VirtualSigstore's log ID is the hex text's bytes, which
			// only works in memory: a trusted_root.json holds the raw ID.
			raw, err := hex.DecodeString(id)
			if err != nil {
				return nil, fmt.Errorf("rekor log id %q: %w", id, err)
			}
			cp := *l
			cp.ID = raw
			logs[id] = &cp
		}
	}
	return root.NewTrustedRoot(root.TrustedRootMediaType01, cas, nil, tsas, logs)
}

// Identity is who a certificate says signed.
type Identity struct {
	// Subject is the certificate's email SAN.
	Subject string
	// Issuer is the OIDC issuer extension.
	Issuer string
	// SourceRepository, when set, is the Source Repository URI extension
	// Fulcio adds for GitHub Actions tokens.
	SourceRepository string
}

// Options bend a bundle. The zero value makes a bundle that verifies: a
// certificate valid from a minute ago for ten minutes, an RFC 3161
// timestamp and a log entry integrated now, with its inclusion proof.
type Options struct {
	// NotBefore and Lifetime bound the certificate; defaults: a minute ago,
	// ten minutes.
	NotBefore time.Time
	Lifetime  time.Duration
	// IntegratedTime is when the log says it saw the entry; default now.
	IntegratedTime time.Time
	// NoTimestamp and NoLogEntry leave the RFC 3161 timestamp or the log
	// entry out.
	NoTimestamp, NoLogEntry bool
}

// signer is a certificate and its key.
type signer struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

var (
	oidIssuerV1         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidSourceRepository = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}
)

func (a *Authority) newSigner(id Identity, o Options) (*signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore, lifetime := o.NotBefore, o.Lifetime
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Minute)
	}
	if lifetime == 0 {
		lifetime = 10 * time.Minute
	}
	issuerDER, err := asn1.MarshalWithParams(id.Issuer, "utf8")
	if err != nil {
		return nil, err
	}
	exts := []pkix.Extension{{Id: oidIssuerV1, Value: []byte(id.Issuer)}, {Id: oidIssuerV2, Value: issuerDER}}
	if id.SourceRepository != "" {
		repoDER, err := asn1.MarshalWithParams(id.SourceRepository, "utf8")
		if err != nil {
			return nil, err
		}
		exts = append(exts, pkix.Extension{Id: oidSourceRepository, Value: repoDER})
	}
	a.mu.Lock()
	a.serial++
	serial := a.serial
	a.mu.Unlock()
	cert, err := createCert(&x509.Certificate{
		SerialNumber: big.NewInt(serial), EmailAddresses: []string{id.Subject},
		NotBefore: notBefore, NotAfter: notBefore.Add(lifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: exts,
	}, a.inter, &key.PublicKey, a.interKey)
	if err != nil {
		return nil, fmt.Errorf("issuing a certificate for %s: %w", id.Subject, err)
	}
	return &signer{key: key, cert: cert}, nil
}

// SignStatement signs an in-toto statement as a DSSE envelope, keylessly
// as id, and returns its bundle.
func (a *Authority) SignStatement(payload []byte, id Identity, o Options) (*bundle.Bundle, error) {
	s, err := a.newSigner(id, o)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(dsse.PAE(PayloadType, payload))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, err
	}
	pb := a.bundleFor(s)
	pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
		Payload: payload, PayloadType: PayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
	}}
	if !o.NoLogEntry {
		env, err := json.Marshal(&dsse.Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
			Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
		if err != nil {
			return nil, err
		}
		tle, err := a.logEntry(dsseentry.KIND, dsseentry.New().DefaultVersion(), s.cert, types.ArtifactProperties{ArtifactBytes: env, SignatureBytes: sig}, a.integratedTime(o))
		if err != nil {
			return nil, fmt.Errorf("logging the signature: %w", err)
		}
		pb.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	return a.finish(pb, sig, o)
}

// SignArtifact signs an artifact (an image manifest) with a message
// signature, keylessly as id, and returns its bundle.
func (a *Authority) SignArtifact(artifact []byte, id Identity, o Options) (*bundle.Bundle, error) {
	s, err := a.newSigner(id, o)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(artifact)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, err
	}
	pb := a.bundleFor(s)
	pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
		Signature:     sig,
	}}
	if !o.NoLogEntry {
		tle, err := a.logEntry(hashedrekord.KIND, hashedrekord.New().DefaultVersion(), s.cert,
			types.ArtifactProperties{ArtifactHash: "sha256:" + hex.EncodeToString(digest[:]), SignatureBytes: sig}, a.integratedTime(o))
		if err != nil {
			return nil, fmt.Errorf("logging the signature: %w", err)
		}
		pb.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	return a.finish(pb, sig, o)
}

func (a *Authority) integratedTime(o Options) time.Time {
	if o.IntegratedTime.IsZero() {
		return time.Now()
	}
	return o.IntegratedTime
}

func (a *Authority) bundleFor(s *signer) *protobundle.Bundle {
	return &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: s.cert.Raw}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{},
		},
	}
}

func (a *Authority) finish(pb *protobundle.Bundle, sig []byte, o Options) (*bundle.Bundle, error) {
	if !o.NoTimestamp {
		tsr, err := a.vs.TimestampResponse(sig)
		if err != nil {
			return nil, fmt.Errorf("timestamping the signature: %w", err)
		}
		pb.VerificationMaterial.TimestampVerificationData.Rfc3161Timestamps = []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}}
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("assembling the bundle: %w", err)
	}
	return b, nil
}

// logEntry is the Rekor v1 entry of a signature by cert, as the
// VirtualSigstore's log would return it: integrated at integrated, with
// its signed entry timestamp and inclusion proof.
func (a *Authority) logEntry(kind, version string, cert *x509.Certificate, props types.ArtifactProperties, integrated time.Time) (*protorekor.TransparencyLogEntry, error) {
	ctx := context.Background()
	props.PublicKeyBytes = [][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
	props.PKIFormat = string(pki.X509)
	proposed, err := types.NewProposedEntry(ctx, kind, version, props)
	if err != nil {
		return nil, err
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		return nil, err
	}
	body, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		return nil, err
	}
	logID, err := a.vs.RekorLogID()
	if err != nil {
		return nil, err
	}
	rawLogID, err := hex.DecodeString(logID)
	if err != nil {
		return nil, err
	}
	const logIndex = 0 // the one leaf of the proof GetInclusionProof makes
	set, err := a.vs.RekorSignPayload(tlog.RekorPayload{LogID: logID, IntegratedTime: integrated.Unix(), LogIndex: logIndex, Body: base64.StdEncoding.EncodeToString(body)})
	if err != nil {
		return nil, err
	}
	proof, err := a.vs.GetInclusionProof(body)
	if err != nil {
		return nil, err
	}
	entry, err := tlog.NewEntry(body, integrated.Unix(), logIndex, rawLogID, set, proof) //nolint:staticcheck // as the VirtualSigstore makes them
	if err != nil {
		return nil, err
	}
	// The entry as a bundle carries it: with its kind and promise.
	tle := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	tle.KindVersion = &protorekor.KindVersion{Kind: kind, Version: version}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle, nil
}

// WithLogEntriesOf returns a copy of b carrying the transparency log
// entries of other: a certificate and a log entry that disagree.
func WithLogEntriesOf(b, other *bundle.Bundle) (*bundle.Bundle, error) {
	return Edit(b, func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TlogEntries = proto.Clone(other.Bundle).(*protobundle.Bundle).GetVerificationMaterial().GetTlogEntries()
	})
}

// WithTimestampsOf returns a copy of b carrying the RFC 3161 timestamps of
// other, which stamp another signature.
func WithTimestampsOf(b, other *bundle.Bundle) (*bundle.Bundle, error) {
	return Edit(b, func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TimestampVerificationData = proto.Clone(other.Bundle).(*protobundle.Bundle).GetVerificationMaterial().GetTimestampVerificationData()
	})
}

// Edit returns a copy of b changed by f. It fails when the result is no
// valid bundle.
func Edit(b *bundle.Bundle, f func(*protobundle.Bundle)) (*bundle.Bundle, error) {
	if b == nil || b.Bundle == nil {
		return nil, errors.New("editing a bundle: no bundle")
	}
	pb := proto.Clone(b.Bundle).(*protobundle.Bundle)
	f(pb)
	return bundle.NewBundle(pb)
}
