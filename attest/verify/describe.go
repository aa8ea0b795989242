package verify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/digitorus/timestamp"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// BundleInfo describes what a bundle claims, WITHOUT verifying any of it:
// for display (twinforge attest inspect). Use Verify to trust it.
type BundleInfo struct {
	// MediaType is the bundle's media type.
	MediaType string `json:"mediaType"`
	// Statement is the DSSE payload's in-toto statement, if the bundle
	// holds one; Payload its raw bytes.
	Statement *intoto.Statement `json:"-"`
	Payload   []byte            `json:"-"`
	// MessageDigest is the signed digest of a message signature
	// ("sha256:<hex>").
	MessageDigest string `json:"messageDigest,omitempty"`
	// Signer is the identity in the certificate, or the key hint.
	Signer SignerIdentity `json:"signer"`
	// CertificateNotBefore and CertificateNotAfter bound the certificate.
	CertificateNotBefore time.Time `json:"certificateNotBefore,omitzero"`
	CertificateNotAfter  time.Time `json:"certificateNotAfter,omitzero"`
	// Timestamps are the times the RFC 3161 timestamps state.
	Timestamps []time.Time `json:"timestamps,omitempty"`
	// LogEntries are the transparency log entries the bundle carries.
	LogEntries []LogEntryInfo `json:"logEntries,omitempty"`
}

// LogEntryInfo describes a transparency log entry.
type LogEntryInfo struct {
	LogID          string    `json:"logId"`
	LogIndex       int64     `json:"logIndex"`
	Kind           string    `json:"kind"`
	IntegratedTime time.Time `json:"integratedTime,omitzero"`
}

// Describe reads what a bundle claims without verifying it.
func Describe(b *bundle.Bundle) (*BundleInfo, error) {
	if b == nil || b.Bundle == nil {
		return nil, errors.New("describing bundle: no bundle")
	}
	info := &BundleInfo{MediaType: b.GetMediaType()}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("describing bundle: %w", err)
	}
	if leaf := vc.Certificate(); leaf != nil {
		info.CertificateNotBefore, info.CertificateNotAfter = leaf.NotBefore, leaf.NotAfter
		if s, err := certificate.SummarizeCertificate(leaf); err == nil {
			info.Signer = SignerIdentity{Issuer: s.Issuer, Subject: s.SubjectAlternativeName}
		}
	} else if pk := vc.PublicKey(); pk != nil {
		info.Signer = SignerIdentity{PublicKey: pk.Hint()}
	}
	sc, err := b.SignatureContent()
	if err != nil {
		return nil, fmt.Errorf("describing bundle: %w", err)
	}
	if env := sc.EnvelopeContent(); env != nil {
		payload, err := decodeBase64(env.RawEnvelope().Payload)
		if err != nil {
			return nil, fmt.Errorf("describing bundle: envelope payload: %w", err)
		}
		info.Payload = payload
		if st, err := ParseStatement(payload); err == nil {
			info.Statement = st
		}
	} else if msg := sc.MessageSignatureContent(); msg != nil {
		alg := map[string]string{"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}[msg.DigestAlgorithm()]
		if alg == "" {
			alg = msg.DigestAlgorithm()
		}
		info.MessageDigest = alg + ":" + hex.EncodeToString(msg.Digest())
	}
	if tss, err := b.Timestamps(); err == nil {
		for _, raw := range tss {
			if ts, err := timestamp.ParseResponse(raw); err == nil {
				info.Timestamps = append(info.Timestamps, ts.Time)
			}
		}
	}
	if entries, err := b.TlogEntries(); err == nil {
		for _, e := range entries {
			tle := e.TransparencyLogEntry()
			li := LogEntryInfo{LogID: hex.EncodeToString(tle.GetLogId().GetKeyId()), LogIndex: e.LogIndex(), Kind: tle.GetKindVersion().GetKind() + "/" + tle.GetKindVersion().GetVersion()}
			if t := e.IntegratedTime(); !t.IsZero() && t.Unix() != 0 {
				li.IntegratedTime = t
			}
			info.LogEntries = append(info.LogEntries, li)
		}
	}
	return info, nil
}
