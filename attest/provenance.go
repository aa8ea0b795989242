package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	provenancepb "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/twinforge/twinforge/attest/verify"
)

const (
	// BuildType identifies twinforge's Dockerfile build and the meaning of
	// its parameters; see buildtype.md.
	BuildType = "https://twinforge.dev/buildtypes/dockerfile/v1"
	// DefaultBuilderID is the builder id recorded when BuildInfo.BuilderID
	// is empty: a twinforge build on a private local buildkitd.
	DefaultBuilderID = "https://twinforge.dev/builders/local/v1"
	// FrontendDependency is the name of the resolved dependency that records
	// the Dockerfile frontend.
	FrontendDependency = "dockerfile.v0"
	// GoModuleDependency names the resolved dependencies that are Go
	// module versions the lock pins (pkg:golang/PATH@VERSION).
	GoModuleDependency = "gomod"
	// notRebuiltURI is the byproduct URI recorded when no rebuild ran.
	notRebuiltURI = BuildType + "#not-rebuilt"
)

// Subject is the artifact a statement is about: the image.
type Subject struct {
	// Name is the image's name, e.g. registry.example/team/hello or hello.
	Name string
	// Digest is the image manifest digest, "sha256:<hex>".
	Digest string
}

// BuildInfo is everything Provenance records about one build.
type BuildInfo struct {
	// Subject is the built image.
	Subject Subject
	// Lock is what the lock the build was made from pins (ParseLock reads
	// a lock file). Required.
	Lock *Lock
	// ContextPath is the build context directory relative to the source
	// repository's root, slash-separated ("." or "" for the root).
	ContextPath string
	// BuilderID identifies the build platform (runDetails.builder.id). The
	// default is DefaultBuilderID.
	BuilderID string
	// Build is the daemon that built the image.
	Build Builder
	// Rebuild is the independent rebuild; nil records that the build was not
	// reproduced (twinforge build --no-rebuild).
	Rebuild *Rebuild
	// InvocationID identifies this run of the build (metadata.invocationId).
	InvocationID string
	// StartedOn and FinishedOn bound the build; zero values are omitted.
	StartedOn, FinishedOn time.Time
	// Variations lists what was deliberately varied for the build's daemon
	// (hostname, CPU set, ...), recorded in internalParameters.
	Variations []string
	// GitHub is the optional GitHub Actions context of the run (repository,
	// ref, sha, run_id, run_attempt, workflow_ref, event_name, ...),
	// recorded as internalParameters.github.
	GitHub map[string]string
}

// Rebuild is the independent rebuild of a build.
type Rebuild struct {
	// Digest is the rebuilt image's manifest digest.
	Digest string
	// Builder is the daemon that rebuilt it.
	Builder Builder
	// RebuilderID identifies the rebuilding platform.
	RebuilderID string
	// Variations lists what differed from the first build.
	Variations []string
	// StrictVariations is whether the variations BuildKit pins (umask,
	// time zone) were varied too: "off", "warn" or "fail"; empty records
	// nothing, as provenance written before the field existed.
	StrictVariations string
	// Decided names the variations whose difference would have failed the
	// build; Warned those that were varied but could only warn.
	Decided, Warned []string
	// Warnings are what only the warned variations changed, one per file
	// and variation ("data/a: mode depends on the umask; ...").
	Warnings []string
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Provenance returns the SLSA Provenance v1 statement of a build: an in-toto
// Statement v1 about info.Subject whose predicate follows BuildType
// (buildtype.md documents every field).
func Provenance(info BuildInfo) (*intoto.Statement, error) {
	if err := info.validate(); err != nil {
		return nil, fmt.Errorf("making provenance: %w", err)
	}
	l := info.Lock

	external := map[string]any{
		"source":     sourceParameters(l.Source),
		"context":    contextPath(info.ContextPath),
		"dockerfile": l.Dockerfile.Path,
		"platform":   l.Platform,
	}
	if len(l.BuildArgs) > 0 {
		args := map[string]any{}
		for k, v := range l.BuildArgs {
			args[k] = v
		}
		external["buildArgs"] = args
	}
	if l.Target != "" {
		external["target"] = l.Target
	}

	buildkitVersion := l.BuildKitVersion
	if info.Build.BuildKitVersion != "" {
		buildkitVersion = info.Build.BuildKitVersion
	}
	internal := map[string]any{
		"sourceDateEpoch": l.SourceDateEpoch,
		"buildkitVersion": l.BuildKitVersion,
		"lockDigest":      l.Digest,
		"variations":      stringList(info.Variations),
	}
	if len(info.GitHub) > 0 {
		gh := map[string]any{}
		for k, v := range info.GitHub {
			gh[k] = v
		}
		internal["github"] = gh
	}

	builderID := info.BuilderID
	if builderID == "" {
		builderID = DefaultBuilderID
	}
	prov := &provenancepb.Provenance{
		BuildDefinition: &provenancepb.BuildDefinition{
			BuildType:            BuildType,
			ResolvedDependencies: resolvedDependencies(l, buildkitVersion),
		},
		RunDetails: &provenancepb.RunDetails{
			Builder: &provenancepb.Builder{
				Id:                  builderID,
				BuilderDependencies: builderDependencies(info.Build),
			},
			Metadata:   &provenancepb.BuildMetadata{InvocationId: info.InvocationID},
			Byproducts: []*intoto.ResourceDescriptor{rebuildByproduct(info.Subject.Digest, info.Rebuild)},
		},
	}
	var err error
	if prov.BuildDefinition.ExternalParameters, err = structpb.NewStruct(external); err != nil {
		return nil, fmt.Errorf("making provenance: externalParameters: %w", err)
	}
	if prov.BuildDefinition.InternalParameters, err = structpb.NewStruct(internal); err != nil {
		return nil, fmt.Errorf("making provenance: internalParameters: %w", err)
	}
	if !info.StartedOn.IsZero() {
		prov.RunDetails.Metadata.StartedOn = timestamppb.New(info.StartedOn.UTC())
	}
	if !info.FinishedOn.IsZero() {
		prov.RunDetails.Metadata.FinishedOn = timestamppb.New(info.FinishedOn.UTC())
	}
	if err := prov.Validate(); err != nil {
		return nil, fmt.Errorf("making provenance: invalid predicate: %w", err)
	}
	predicate, err := toStruct(prov)
	if err != nil {
		return nil, fmt.Errorf("making provenance: %w", err)
	}
	st := &intoto.Statement{
		Type: verify.StatementType,
		Subject: []*intoto.ResourceDescriptor{{
			Name:   info.Subject.Name,
			Digest: map[string]string{"sha256": strings.TrimPrefix(info.Subject.Digest, "sha256:")},
		}},
		PredicateType: verify.PredicateType,
		Predicate:     predicate,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("making provenance: invalid statement: %w", err)
	}
	return st, nil
}

func (info *BuildInfo) validate() error {
	if info.Lock == nil {
		return errors.New("no lock")
	}
	if !sha256Digest.MatchString(info.Lock.Digest) {
		return fmt.Errorf("lock digest %q: want sha256:<64 hex digits> (see ParseLock)", info.Lock.Digest)
	}
	if info.Subject.Name == "" {
		return errors.New("subject has no name")
	}
	if !sha256Digest.MatchString(info.Subject.Digest) {
		return fmt.Errorf("subject digest %q: want sha256:<64 hex digits>", info.Subject.Digest)
	}
	if info.Rebuild != nil && !sha256Digest.MatchString(info.Rebuild.Digest) {
		return fmt.Errorf("rebuild digest %q: want sha256:<64 hex digits>", info.Rebuild.Digest)
	}
	if !info.StartedOn.IsZero() && !info.FinishedOn.IsZero() && info.FinishedOn.Before(info.StartedOn) {
		return fmt.Errorf("build finished (%s) before it started (%s)", info.FinishedOn, info.StartedOn)
	}
	return nil
}

func contextPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func stringList(s []string) []any {
	out := make([]any, 0, len(s))
	for _, v := range s {
		out = append(out, v)
	}
	return out
}

func sourceParameters(s Source) map[string]any {
	m := map[string]any{"kind": s.Kind}
	if s.Repository != "" {
		m["repository"] = s.Repository
	}
	if s.Ref != "" {
		m["ref"] = s.Ref
	}
	return m
}

// resolvedDependencies lists the source, the Dockerfile, every locked image,
// URL and git repository, and the Dockerfile frontend.
func resolvedDependencies(l *Lock, buildkitVersion string) []*intoto.ResourceDescriptor {
	out := []*intoto.ResourceDescriptor{sourceDependency(l.Source)}
	// Materials lists the source, the Dockerfile, then the lock's images,
	// URLs and git repositories in the lock's order; the source is
	// described above in more detail.
	materials := l.materials()
	names := []string{"dockerfile"}
	for range l.Images {
		names = append(names, "image")
	}
	for range l.URLs {
		names = append(names, "url")
	}
	for range l.Git {
		names = append(names, "git")
	}
	firstModule := len(names)
	for range l.GoModules {
		names = append(names, GoModuleDependency)
	}
	for i, m := range materials {
		rd := &intoto.ResourceDescriptor{Uri: m.uri, Digest: m.digest}
		if i < len(names) {
			rd.Name = names[i]
		}
		if i >= 1 && i <= len(l.Images) {
			// The purl normalises the name; keep it as written in FROM.
			rd.Annotations, _ = structpb.NewStruct(map[string]any{"reference": l.Images[i-1].Name})
		}
		if j := i - firstModule; j >= 0 && j < len(l.GoModules) {
			rd.Annotations, _ = structpb.NewStruct(goModuleAnnotations(l.GoModules[j], l.GoSumDB))
		}
		out = append(out, rd)
	}
	frontend := &intoto.ResourceDescriptor{
		Name: FrontendDependency,
		Uri:  "pkg:github/moby/buildkit@" + buildkitVersion + "#frontend/dockerfile",
	}
	frontend.Annotations, _ = structpb.NewStruct(map[string]any{"frontend": FrontendDependency, "builtin": true, "buildkitVersion": buildkitVersion})
	return append(out, frontend)
}

func sourceDependency(s Source) *intoto.ResourceDescriptor {
	rd := &intoto.ResourceDescriptor{Name: "source", Digest: map[string]string{}}
	ann := map[string]any{"contextDigest": s.Digest}
	if s.Dirty {
		ann["dirty"] = true
	}
	switch s.Kind {
	case SourceKindGit:
		repo := s.Repository
		if repo == "" {
			repo = "file:"
		}
		at := s.Ref
		if at == "" {
			at = s.Commit
		}
		rd.Uri = "git+" + repo + "@" + at
		if s.Commit != "" {
			rd.Digest["gitCommit"] = s.Commit
		}
		if s.Tree != "" {
			rd.Digest["gitTree"] = s.Tree
		}
	default:
		rd.Uri = "context:" + s.Digest
		rd.Digest["sha256"] = strings.TrimPrefix(s.Digest, "sha256:")
	}
	rd.Annotations, _ = structpb.NewStruct(ann)
	return rd
}

func builderDependencies(b Builder) []*intoto.ResourceDescriptor {
	var out []*intoto.ResourceDescriptor
	if b.BuildKitVersion != "" {
		ann := map[string]any{"remote": b.Remote}
		if b.Snapshotter != "" {
			ann["snapshotter"] = b.Snapshotter
		}
		if b.CPUSet != "" {
			ann["cpuset"] = b.CPUSet
		}
		b.Worker.annotations(ann)
		addCache(ann, b)
		rd := &intoto.ResourceDescriptor{Name: "buildkitd", Uri: "pkg:github/moby/buildkit@" + b.BuildKitVersion}
		rd.Annotations, _ = structpb.NewStruct(ann)
		out = append(out, rd)
	}
	if b.Runc != "" {
		rd := &intoto.ResourceDescriptor{Name: "runc", Uri: "pkg:github/opencontainers/runc@" + runcVersion(b.Runc)}
		rd.Annotations, _ = structpb.NewStruct(map[string]any{"versionLine": b.Runc})
		out = append(out, rd)
	}
	return out
}

// addCache records whether a daemon started cold or warm (from a cache
// of its own side), its cache's scope, and why a cache was discarded.
func addCache(ann map[string]any, b Builder) {
	for k, v := range map[string]string{"cache": b.Cache, "cacheScope": b.CacheScope, "cacheReset": b.CacheReset, "rootFS": b.RootFS} {
		if v != "" {
			ann[k] = v
		}
	}
}

var runcVersionRe = regexp.MustCompile(`(?:runc version\s+)?v?([0-9][0-9A-Za-z.+~-]*)`)

// runcVersion extracts "1.1.15" from "runc version 1.1.15+ds1".
func runcVersion(line string) string {
	if m := runcVersionRe.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return strings.ReplaceAll(strings.TrimSpace(line), " ", "_")
}

func rebuildByproduct(subject string, r *Rebuild) *intoto.ResourceDescriptor {
	if r == nil {
		rd := &intoto.ResourceDescriptor{Name: verify.RebuildByproduct, Uri: notRebuiltURI}
		rd.Annotations, _ = structpb.NewStruct(map[string]any{"reproduced": false, "reason": "not rebuilt"})
		return rd
	}
	ann := map[string]any{
		"reproduced":  r.Digest == subject,
		"rebuilderId": r.RebuilderID,
		"variations":  stringList(r.Variations),
	}
	if r.StrictVariations != "" {
		ann["strictVariations"] = r.StrictVariations
		ann["decidingVariations"] = stringList(r.Decided)
		ann["warnedVariations"] = stringList(r.Warned)
		ann["warnings"] = stringList(r.Warnings)
	}
	if r.Builder.BuildKitVersion != "" {
		ann["buildkitVersion"] = r.Builder.BuildKitVersion
	}
	if r.Builder.Runc != "" {
		ann["runc"] = r.Builder.Runc
	}
	if r.Builder.Snapshotter != "" {
		ann["snapshotter"] = r.Builder.Snapshotter
	}
	if r.Builder.CPUSet != "" {
		ann["cpuset"] = r.Builder.CPUSet
	}
	r.Builder.Worker.annotations(ann)
	addCache(ann, r.Builder)
	rd := &intoto.ResourceDescriptor{
		Name:   verify.RebuildByproduct,
		Digest: map[string]string{"sha256": strings.TrimPrefix(r.Digest, "sha256:")},
	}
	rd.Annotations, _ = structpb.NewStruct(ann)
	return rd
}

// toStruct converts a proto message to a structpb.Struct through its
// protojson form, the shape in-toto predicates take.
func toStruct(m proto.Message) (*structpb.Struct, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	return s, nil
}

// MarshalStatement encodes a statement as compact JSON with sorted keys, so
// that the same statement always gives the same bytes.
func MarshalStatement(st *intoto.Statement) ([]byte, error) {
	if st == nil {
		return nil, errors.New("marshalling statement: nil statement")
	}
	raw, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("marshalling statement: %w", err)
	}
	return canonicalJSON(raw)
}

// canonicalJSON re-encodes JSON with encoding/json: compact, keys sorted,
// numbers kept as written.
func canonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("re-encoding JSON: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("re-encoding JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// goModuleAnnotations says where a Go module is pinned, its go.sum hashes
// and whether it was proven in the checksum database.
func goModuleAnnotations(m GoModule, db *GoSumDB) map[string]any {
	ann := map[string]any{"goSum": m.GoSum}
	if m.Sum != "" {
		ann["h1"] = m.Sum
	}
	if m.GoModSum != "" {
		ann["goModH1"] = m.GoModSum
	}
	if m.Vendored != "" {
		ann["vendoredH1"] = m.Vendored
	}
	if db != nil {
		ann["sumDB"] = db.Name
		ann["sumDBTreeSize"] = float64(db.TreeSize)
	}
	return ann
}
