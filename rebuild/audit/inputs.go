package audit

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	provenancepb "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"golang.org/x/mod/module"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/hermetic/gomod"
)

// BuildType is the only build type this package rebuilds (it is
// attest.BuildType).
const BuildType = "https://twinforge.dev/buildtypes/dockerfile/v1"

// goModuleDependency names the resolved dependencies that are Go module
// versions (attest.GoModuleDependency).
const goModuleDependency = "gomod"

// ErrRefused is wrapped by every error that refuses a rebuild before it
// starts: the provenance cannot be rebuilt by this package, or the source
// or a base image is not what the provenance records.
var ErrRefused = errors.New("rebuild refused")

func refusef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Inputs are the inputs of a build as its provenance records them: enough
// to build it again, and nothing else.
type Inputs struct {
	// SubjectName and SubjectDigest are the image the provenance is about.
	SubjectName, SubjectDigest string
	// BuilderID is the provenance's builder.
	BuilderID string
	// Source is the build's source: kind, repository, ref, commit, tree of
	// the context directory, and Digest, twinforge's digest of the build
	// context (the source dependency's annotation contextDigest).
	Source hermetic.Source
	// ContextPath is the build context directory, relative to the source
	// repository's root, slash-separated ("." for the root).
	ContextPath string
	// Dockerfile is the Dockerfile's path relative to the context and its
	// sha256 digest.
	Dockerfile hermetic.File
	// BuildArgs, Target, Platform and SourceDateEpoch are the build's.
	BuildArgs       map[string]string
	Target          string
	Platform        string
	SourceDateEpoch int64
	// BuildKitVersion is the BuildKit version the build's lock pinned.
	BuildKitVersion string
	// Images are the base images by name (as the Dockerfile writes them)
	// and digest; their Location is empty.
	Images []hermetic.Image
	// URLs and Git are the remote files and git sources, pinned.
	URLs []hermetic.URL
	Git  []hermetic.GitSource
	// GoModules are the Go module versions the lock pinned, as the
	// context's go.sum files and vendor directories hold them: part of the
	// source, which the checkout brings.
	GoModules []gomod.Module
	// ResolvedDependencies are the provenance's, as recorded.
	ResolvedDependencies []*intoto.ResourceDescriptor
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// FromProvenance reads the inputs of a build from its provenance
// statement, which must be about digest. The statement should have been
// verified (verify.Verify); FromProvenance checks only that it is complete
// and of the one build type it knows how to repeat. What it cannot
// reproduce exactly (an unknown dependency, a build from uncommitted
// changes) is refused with ErrRefused.
func FromProvenance(st *intoto.Statement, digest string) (*Inputs, error) {
	if !sha256Digest.MatchString(digest) {
		return nil, fmt.Errorf("reading provenance: digest %q: want sha256:<64 hex digits>", digest)
	}
	if !verify.SubjectHasDigest(st, digest) {
		return nil, refusef("the provenance is not about %s", digest)
	}
	prov, err := verify.ProvenancePredicate(st)
	if err != nil {
		return nil, refusef("%v", err)
	}
	def := prov.GetBuildDefinition()
	if def.GetBuildType() != BuildType {
		return nil, refusef("build type %q: only %s builds can be rebuilt", def.GetBuildType(), BuildType)
	}
	in := &Inputs{
		SubjectDigest:        digest,
		BuilderID:            prov.GetRunDetails().GetBuilder().GetId(),
		ResolvedDependencies: def.GetResolvedDependencies(),
	}
	for _, s := range st.GetSubject() {
		if "sha256:"+s.GetDigest()["sha256"] == digest {
			in.SubjectName = s.GetName()
			break
		}
	}
	if err := in.readParameters(def); err != nil {
		return nil, refusef("provenance: %v", err)
	}
	// Build args come from whoever signed the provenance: one that steers
	// BuildKit itself (BUILDKIT_SYNTAX runs an image as the frontend) is
	// never repeated.
	if err := hermetic.CheckBuildArgs(in.BuildArgs); err != nil {
		return nil, &refusal{fmt.Errorf("provenance: %w", err)}
	}
	if err := in.readDependencies(def.GetResolvedDependencies()); err != nil {
		return nil, refusef("provenance: %v", err)
	}
	if in.Source.Dirty {
		return nil, refusef("the provenance records a build from uncommitted changes of %s (source annotation dirty): no checkout can hold them", in.Source.Commit)
	}
	// The lock validates what a build accepts: paths, platform, digests.
	if _, err := in.lock().Marshal(); err != nil {
		return nil, refusef("provenance: %v", err)
	}
	return in, nil
}

func (in *Inputs) readParameters(def *provenancepb.BuildDefinition) error {
	ext := def.GetExternalParameters().GetFields()
	src := ext["source"].GetStructValue().GetFields()
	if src == nil {
		return errors.New("externalParameters.source is missing")
	}
	in.Source.Kind = src["kind"].GetStringValue()
	in.Source.Repository = src["repository"].GetStringValue()
	in.Source.Ref = src["ref"].GetStringValue()
	var err error
	if in.ContextPath, err = stringField(ext, "context", true); err != nil {
		return err
	}
	if p, err := stringField(ext, "dockerfile", true); err != nil {
		return err
	} else {
		in.Dockerfile.Path = p
	}
	if in.Platform, err = stringField(ext, "platform", true); err != nil {
		return err
	}
	if in.Target, err = stringField(ext, "target", false); err != nil {
		return err
	}
	if args, ok := ext["buildArgs"]; ok {
		s := args.GetStructValue()
		if s == nil {
			return errors.New("externalParameters.buildArgs is not an object")
		}
		in.BuildArgs = map[string]string{}
		for k, v := range s.GetFields() {
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			if !ok {
				return fmt.Errorf("externalParameters.buildArgs.%s is not a string", k)
			}
			in.BuildArgs[k] = sv.StringValue
		}
	}
	for k := range ext {
		switch k {
		case "source", "context", "dockerfile", "platform", "target", "buildArgs":
		default:
			return fmt.Errorf("unknown external parameter %q: this twinforge cannot repeat what it means", k)
		}
	}
	internal := def.GetInternalParameters().GetFields()
	epoch, ok := internal["sourceDateEpoch"].GetKind().(*structpb.Value_NumberValue)
	if !ok {
		return errors.New("internalParameters.sourceDateEpoch is missing")
	}
	if n := epoch.NumberValue; n < 0 || n != math.Trunc(n) || n > 1<<53 {
		return fmt.Errorf("internalParameters.sourceDateEpoch %v: want a whole number of seconds", n)
	}
	in.SourceDateEpoch = int64(epoch.NumberValue)
	in.BuildKitVersion = internal["buildkitVersion"].GetStringValue()
	return nil
}

func stringField(m map[string]*structpb.Value, key string, required bool) (string, error) {
	v, ok := m[key]
	if !ok {
		if required {
			return "", fmt.Errorf("externalParameters.%s is missing", key)
		}
		return "", nil
	}
	s, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", fmt.Errorf("externalParameters.%s is not a string", key)
	}
	return s.StringValue, nil
}

// readDependencies reads the source, the Dockerfile, images, URLs and git
// sources from resolvedDependencies (attest/buildtype.md).
func (in *Inputs) readDependencies(deps []*intoto.ResourceDescriptor) error {
	var haveSource, haveDockerfile bool
	for i, rd := range deps {
		ann := rd.GetAnnotations().GetFields()
		d := rd.GetDigest()
		switch rd.GetName() {
		case "source":
			if haveSource {
				return errors.New("two source dependencies")
			}
			haveSource = true
			in.Source.Digest = ann["contextDigest"].GetStringValue()
			in.Source.Dirty = ann["dirty"].GetBoolValue()
			switch in.Source.Kind {
			case hermetic.SourceKindGit:
				in.Source.Commit, in.Source.Tree = d["gitCommit"], d["gitTree"]
				if in.Source.Commit == "" || in.Source.Tree == "" {
					return errors.New("the git source dependency has no gitCommit or gitTree")
				}
			case hermetic.SourceKindTree:
				if "sha256:"+d["sha256"] != in.Source.Digest {
					return errors.New("the tree source dependency's sha256 is not its contextDigest")
				}
			default:
				return fmt.Errorf("source kind %q: want git or tree", in.Source.Kind)
			}
			if !sha256Digest.MatchString(in.Source.Digest) {
				return fmt.Errorf("the source dependency's contextDigest %q: want sha256:<64 hex digits>", in.Source.Digest)
			}
		case "dockerfile":
			if haveDockerfile {
				return errors.New("two dockerfile dependencies")
			}
			haveDockerfile = true
			if rd.GetUri() != "file:"+in.Dockerfile.Path {
				return fmt.Errorf("the dockerfile dependency %q is not externalParameters.dockerfile %q", rd.GetUri(), in.Dockerfile.Path)
			}
			in.Dockerfile.Digest = "sha256:" + d["sha256"]
		case "image":
			ref := ann["reference"].GetStringValue()
			if ref == "" {
				return fmt.Errorf("resolvedDependencies[%d] (image %s) has no annotation reference: the name the Dockerfile uses is unknown", i, rd.GetUri())
			}
			in.Images = append(in.Images, hermetic.Image{Name: ref, Digest: "sha256:" + d["sha256"]})
		case "url":
			in.URLs = append(in.URLs, hermetic.URL{URL: rd.GetUri(), Digest: "sha256:" + d["sha256"]})
		case "git":
			remote, ref, _ := strings.Cut(rd.GetUri(), "#")
			in.Git = append(in.Git, hermetic.GitSource{Remote: remote, Ref: ref, Commit: d["gitCommit"]})
		case goModuleDependency:
			m, err := goModule(rd.GetUri(), ann)
			if err != nil {
				return fmt.Errorf("resolvedDependencies[%d]: %w", i, err)
			}
			in.GoModules = append(in.GoModules, m)
		case "dockerfile.v0":
			// The daemon's builtin frontend: the rebuilding daemon's own.
		default:
			return fmt.Errorf("unknown resolved dependency %q (%s): this twinforge cannot provide it", rd.GetName(), rd.GetUri())
		}
	}
	switch {
	case !haveSource:
		return errors.New("no source dependency")
	case !haveDockerfile:
		return errors.New("no dockerfile dependency")
	}
	return nil
}

// lock is the lock the provenance was made from, as far as it records it:
// everything but the per-file listing and the images' locations.
func (in *Inputs) lock() *hermetic.Lock {
	return &hermetic.Lock{
		SchemaVersion:   hermetic.SchemaVersion,
		Source:          in.Source,
		Dockerfile:      in.Dockerfile,
		BuildArgs:       in.BuildArgs,
		Target:          in.Target,
		Platform:        in.Platform,
		Images:          withLocations(in.Images, nil),
		URLs:            in.URLs,
		Git:             in.Git,
		GoModules:       in.GoModules,
		SourceDateEpoch: in.SourceDateEpoch,
		BuildKitVersion: in.BuildKitVersion,
	}
}

// withLocations copies images with their locations; an image without one
// is located in its registry by digest.
func withLocations(images []hermetic.Image, locations map[string]string) []hermetic.Image {
	out := make([]hermetic.Image, len(images))
	for i, im := range images {
		out[i] = im
		if loc, ok := locations[im.Name]; ok {
			out[i].Location = loc
		} else {
			out[i].Location = hermetic.LocationRegistry + registryName(im.Name) + "@" + im.Digest
		}
	}
	return out
}

// goModule reads a Go module dependency back: pkg:golang/PATH@VERSION
// with the go.sum hashes and the go.sum that lists it in its annotations
// (attest records them so).
func goModule(uri string, ann map[string]*structpb.Value) (gomod.Module, error) {
	pathVersion, ok := strings.CutPrefix(uri, "pkg:golang/")
	i := strings.LastIndex(pathVersion, "@")
	if !ok || i <= 0 {
		return gomod.Module{}, fmt.Errorf("Go module dependency %q: want pkg:golang/PATH@VERSION", uri)
	}
	m := gomod.Module{
		Path: pathVersion[:i], Version: pathVersion[i+1:],
		Sum: ann["h1"].GetStringValue(), GoModSum: ann["goModH1"].GetStringValue(),
		Vendored: ann["vendoredH1"].GetStringValue(), GoSum: ann["goSum"].GetStringValue(),
	}
	if err := module.Check(m.Path, m.Version); err != nil {
		return gomod.Module{}, fmt.Errorf("Go module dependency %q: %w", uri, err)
	}
	if m.GoSum == "" || (m.Sum == "" && m.GoModSum == "") {
		return gomod.Module{}, fmt.Errorf("Go module dependency %q: no goSum or h1 annotation", uri)
	}
	return m, nil
}
