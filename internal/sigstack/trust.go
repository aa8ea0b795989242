package sigstack

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

type assembledRoot struct {
	root       *root.TrustedRoot
	json       []byte
	rekorLogID []byte
}

// trustedRoot assembles the stack's trusted root from Fulcio's
// /api/v2/trustBundle answer, the TSA's PEM certificate chain and Rekor's
// key, then parses its JSON back so callers get exactly what a reader of
// trusted_root.json gets.
func trustedRoot(validFrom time.Time, fulcioURL string, fulcioBundle []byte, tsaURL string, tsaChain []byte, rekorURL string, rekorKey ed25519.PublicKey) (*assembledRoot, error) {
	ca, err := fulcioCA(fulcioBundle)
	if err != nil {
		return nil, err
	}
	ca.URI, ca.ValidityPeriodStart = fulcioURL, validFrom

	tsa, err := timestampingAuthority(tsaChain)
	if err != nil {
		return nil, err
	}
	tsa.URI, tsa.ValidityPeriodStart = tsaURL, validFrom

	// Rekor v2 names its log by the C2SP signed-note key hash of the
	// checkpoint origin (--hostname) and key: entries carry it as log ID.
	_, logID, err := note.KeyHash(Loopback, rekorKey)
	if err != nil {
		return nil, fmt.Errorf("computing Rekor's log ID: %w", err)
	}
	tlog := &root.TransparencyLog{
		BaseURL:             rekorURL,
		ID:                  logID,
		ValidityPeriodStart: validFrom,
		HashFunc:            crypto.SHA256,
		PublicKey:           rekorKey,
		SignatureHashFunc:   crypto.SHA512,
	}

	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{ca}, nil, []root.TimestampingAuthority{tsa},
		map[string]*root.TransparencyLog{fmt.Sprintf("%x", logID): tlog})
	if err != nil {
		return nil, fmt.Errorf("assembling the trusted root: %w", err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding the trusted root: %w", err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding the trusted root: %w", err)
	}
	parsed, err := root.NewTrustedRootFromJSON(indented.Bytes())
	if err != nil {
		return nil, fmt.Errorf("parsing the assembled trusted root: %w", err)
	}
	return &assembledRoot{root: parsed, json: indented.Bytes(), rekorLogID: logID}, nil
}

// fulcioCA reads Fulcio's trust bundle: chains of PEM certificates, each
// ordered from the issuing CA to the root. The stack's ephemeral CA has one.
func fulcioCA(bundle []byte) (*root.FulcioCertificateAuthority, error) {
	var tb struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(bundle, &tb); err != nil {
		return nil, fmt.Errorf("decoding Fulcio's trust bundle: %w", err)
	}
	if len(tb.Chains) != 1 || len(tb.Chains[0].Certificates) == 0 {
		return nil, fmt.Errorf("Fulcio's trust bundle has %d chains, want one", len(tb.Chains))
	}
	var certs []*x509.Certificate
	for _, p := range tb.Chains[0].Certificates {
		c, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("decoding Fulcio's trust bundle: %w", err)
		}
		certs = append(certs, c...)
	}
	n := len(certs)
	return &root.FulcioCertificateAuthority{Root: certs[n-1], Intermediates: certs[:n-1]}, nil
}

// timestampingAuthority reads the TSA's chain: its signing certificate,
// then intermediates, then the root.
func timestampingAuthority(chain []byte) (*root.SigstoreTimestampingAuthority, error) {
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(chain)
	if err != nil {
		return nil, fmt.Errorf("decoding the TSA's certificate chain: %w", err)
	}
	if len(certs) < 2 {
		return nil, errors.New("the TSA's certificate chain needs a signing certificate and a root")
	}
	n := len(certs)
	return &root.SigstoreTimestampingAuthority{Leaf: certs[0], Intermediates: certs[1 : n-1], Root: certs[n-1]}, nil
}

// signingConfig lists the stack's services for clients that take a
// Sigstore signing config (sigstore-go, cosign --signing-config).
func signingConfig(validFrom time.Time, fulcioURL, issuer, timestampURL, rekorURL string) ([]byte, error) {
	svc := func(url string, version uint32) root.Service {
		return root.Service{URL: url, MajorAPIVersion: version, ValidityPeriodStart: validFrom, Operator: "twinforge-sigstack"}
	}
	any1 := root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY}
	sc, err := root.NewSigningConfig(root.SigningConfigMediaType02,
		[]root.Service{svc(fulcioURL, 1)},
		[]root.Service{svc(issuer, 1)},
		[]root.Service{svc(rekorURL, 2)}, any1,
		[]root.Service{svc(timestampURL, 1)}, any1)
	if err != nil {
		return nil, fmt.Errorf("assembling the signing config: %w", err)
	}
	b, err := sc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding the signing config: %w", err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding the signing config: %w", err)
	}
	return indented.Bytes(), nil
}
