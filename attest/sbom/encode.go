package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Formats.
const (
	// SPDX is SPDX 2.3 JSON.
	SPDX = "spdx"
	// CycloneDX is CycloneDX 1.6 JSON.
	CycloneDX = "cyclonedx"
)

// In-toto predicate types of the statements, as cosign names them
// (cosign verify-attestation --type spdxjson / cyclonedx).
const (
	PredicateSPDX      = "https://spdx.dev/Document"
	PredicateCycloneDX = "https://cyclonedx.org/bom"
)

// Formats lists the formats Encode writes.
var Formats = []string{SPDX, CycloneDX}

// PredicateType is the in-toto predicate type of a format.
func PredicateType(format string) (string, error) {
	switch format {
	case SPDX:
		return PredicateSPDX, nil
	case CycloneDX:
		return PredicateCycloneDX, nil
	}
	return "", fmt.Errorf("SBOM format %q: want %s", format, strings.Join(Formats, " or "))
}

// Image is the subject of an SBOM.
type Image struct {
	// Name is the image's name, e.g. registry.example/team/app.
	Name string
	// Digest is its manifest digest, "sha256:<hex>".
	Digest string
	// Created is when it was made (SOURCE_DATE_EPOCH for a twinforge
	// build): the SBOM's creation time, so that it is reproducible.
	Created time.Time
}

func (im Image) purl() string {
	ns, name := "", im.Name
	if i := strings.LastIndexByte(im.Name, '/'); i >= 0 {
		ns, name = im.Name[:i], im.Name[i+1:]
	}
	_ = ns
	q := packageurl.Qualifiers{}
	if ns != "" {
		q = append(q, packageurl.Qualifier{Key: "repository_url", Value: ns})
	}
	return packageurl.NewPackageURL("oci", "", name, im.Digest, q, "").ToString()
}

// Encode writes the SBOM of im with pkgs in format.
func Encode(format string, im Image, pkgs []Package) ([]byte, error) {
	if !strings.HasPrefix(im.Digest, "sha256:") || len(im.Digest) != 71 {
		return nil, fmt.Errorf("SBOM: image digest %q: want sha256:<64 hex digits>", im.Digest)
	}
	switch format {
	case SPDX:
		return encodeSPDX(im, pkgs)
	case CycloneDX:
		return encodeCycloneDX(im, pkgs)
	}
	_, err := PredicateType(format)
	return nil, err
}

func encodeSPDX(im Image, pkgs []Package) ([]byte, error) {
	hexDigest := strings.TrimPrefix(im.Digest, "sha256:")
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      im.Name + "@" + im.Digest,
		DocumentNamespace: "https://twinforge.dev/spdx/" + strings.TrimPrefix(im.Name, "/") + "/" + hexDigest,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{Creator: "twinforge", CreatorType: "Tool"}},
			Created:  im.Created.UTC().Format(time.RFC3339),
		},
	}
	root := &spdx.Package{
		PackageName:             im.Name,
		PackageSPDXIdentifier:   "Image",
		PackageVersion:          im.Digest,
		PackageDownloadLocation: "NOASSERTION",
		PackageChecksums:        []common.Checksum{{Algorithm: common.SHA256, Value: hexDigest}},
		PackageExternalReferences: []*spdx.PackageExternalReference{
			{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: im.purl()},
		},
		PrimaryPackagePurpose: "CONTAINER",
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "Image"), Relationship: common.TypeRelationshipDescribe,
	})
	for i, p := range pkgs {
		id := common.ElementID("Package-" + strconv.Itoa(i+1))
		sp := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: "NOASSERTION",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
			PackageSourceInfo:       "found in /" + p.Location,
			PackageExternalReferences: []*spdx.PackageExternalReference{
				{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p.PURL},
			},
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "Image"), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf); err != nil {
		return nil, fmt.Errorf("writing SPDX: %w", err)
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

func encodeCycloneDX(im Image, pkgs []Package) ([]byte, error) {
	bom := cdx.NewBOM()
	// The serial number follows from the image: the same image, the same
	// SBOM.
	sum := sha256.Sum256([]byte("twinforge cyclonedx " + im.Digest))
	u := hex.EncodeToString(sum[:16])
	bom.SerialNumber = "urn:uuid:" + u[0:8] + "-" + u[8:12] + "-5" + u[13:16] + "-8" + u[17:20] + "-" + u[20:32]
	bom.Metadata = &cdx.Metadata{
		Timestamp: im.Created.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "twinforge"}}},
		Component: &cdx.Component{
			BOMRef: im.purl(), Type: cdx.ComponentTypeContainer, Name: im.Name, Version: im.Digest, PackageURL: im.purl(),
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(im.Digest, "sha256:")}},
		},
	}
	comps := make([]cdx.Component, 0, len(pkgs))
	seen := map[string]int{}
	for _, p := range pkgs {
		ref := p.PURL
		if n := seen[ref]; n > 0 {
			ref = fmt.Sprintf("%s#%d", p.PURL, n)
		}
		seen[p.PURL]++
		props := []cdx.Property{{Name: "twinforge:location", Value: "/" + p.Location}}
		if p.Checksum != "" {
			props = append(props, cdx.Property{Name: "twinforge:go-sum", Value: p.Checksum})
		}
		comps = append(comps, cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL, Properties: &props})
	}
	bom.Components = &comps
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("writing CycloneDX: %w", err)
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// Packages reads the package URLs (with name and version) an SBOM lists:
// SPDX (2.2 or 2.3 JSON, externalRefs of type purl) or CycloneDX JSON
// (components, nested ones included), by predicate type.
func Packages(predicateType string, doc []byte) ([]Package, error) {
	var out []Package
	switch predicateType {
	case PredicateSPDX:
		d, err := spdxjson.Read(bytes.NewReader(doc))
		if err != nil {
			return nil, fmt.Errorf("reading SPDX: %w", err)
		}
		for _, p := range d.Packages {
			for _, ref := range p.PackageExternalReferences {
				if ref.RefType == common.TypePackageManagerPURL {
					out = append(out, fromPURL(ref.Locator, p.PackageName, p.PackageVersion))
				}
			}
		}
	case PredicateCycloneDX:
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			return nil, fmt.Errorf("reading CycloneDX: %w", err)
		}
		var walk func([]cdx.Component)
		walk = func(cs []cdx.Component) {
			for _, c := range cs {
				if c.PackageURL != "" {
					out = append(out, fromPURL(c.PackageURL, c.Name, c.Version))
				}
				if c.Components != nil {
					walk(*c.Components)
				}
			}
		}
		if bom.Components != nil {
			walk(*bom.Components)
		}
	default:
		return nil, errors.New("not an SBOM predicate type: want " + PredicateSPDX + " or " + PredicateCycloneDX)
	}
	return out, nil
}

func fromPURL(purl, name, version string) Package {
	p := Package{PURL: purl, Name: name, Version: version}
	if u, err := packageurl.FromString(purl); err == nil {
		p.Type = u.Type
		if u.Version != "" {
			p.Version = u.Version
		}
	}
	return p
}

// Statement wraps an SBOM in an in-toto Statement v1 about the image.
func Statement(format string, im Image, doc []byte) ([]byte, error) {
	pt, err := PredicateType(format)
	if err != nil {
		return nil, err
	}
	if !json.Valid(doc) {
		return nil, errors.New("SBOM is not JSON")
	}
	st := struct {
		Type          string             `json:"_type"`
		Subject       []statementSubject `json:"subject"`
		PredicateType string             `json:"predicateType"`
		Predicate     json.RawMessage    `json:"predicate"`
	}{"https://in-toto.io/Statement/v1", []statementSubject{{Name: im.Name, Digest: map[string]string{"sha256": strings.TrimPrefix(im.Digest, "sha256:")}}}, pt, doc}
	return json.Marshal(st)
}

type statementSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Generate catalogues img once and returns, for each format, the in-toto
// statement of its SBOM about im, ready to sign.
func Generate(img v1.Image, im Image, formats []string) (map[string][]byte, error) {
	if len(formats) == 0 {
		return nil, errors.New("SBOM: no format")
	}
	for _, f := range formats {
		if _, err := PredicateType(f); err != nil {
			return nil, err
		}
	}
	pkgs, err := Catalog(img)
	if err != nil {
		return nil, fmt.Errorf("cataloguing %s: %w", im.Name, err)
	}
	out := map[string][]byte{}
	for _, f := range formats {
		doc, err := Encode(f, im, pkgs)
		if err != nil {
			return nil, err
		}
		if out[f], err = Statement(f, im, doc); err != nil {
			return nil, err
		}
	}
	return out, nil
}
