package hermetic

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/solver/pb"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	"github.com/moby/buildkit/util/gitutil"

	"github.com/twinforge/twinforge/hermetic/gomod"
)

// SourcePolicy translates the lock into a BuildKit source policy that only
// admits the locked inputs. BuildKit evaluates the rules of a policy in
// order and the last matching ALLOW/DENY wins (sourcepolicy/engine.go), so
// the policy first denies every remote scheme and then allows each locked
// input:
//
//   - images: the builder hands them to BuildKit as OCI-layout named
//     contexts, whose source identifier is
//     "oci-layout://<name>@<digest>" (the store ID is an attribute); each
//     locked digest is allowed for any name with a wildcard.
//   - URLs: a CONVERT rule sets the "http.checksum" attribute to the locked
//     digest (so BuildKit verifies the download even if the Dockerfile has
//     no --checksum), and an ALLOW rule admits the exact URL only with that
//     checksum.
//   - git: likewise with "git.checksum" set to the locked commit; the
//     identifier is "git://<host>/<path>#<ref>[:<subdir>]" as built by
//     llb.Git.
//
// local:// sources (the build context and the Dockerfile) stay allowed.
// Registry pulls (docker-image://) are always denied: the builder must turn
// registry-located images into OCI layouts too.
func (l *Lock) SourcePolicy() *spb.Policy {
	rule := func(action spb.PolicyAction, id string, mt spb.MatchType) *spb.Rule {
		return &spb.Rule{Action: action, Selector: &spb.Selector{Identifier: id, MatchType: mt}}
	}
	pol := &spb.Policy{Version: 1}
	for _, scheme := range []string{"docker-image", "docker-image+blob", "oci-layout", "oci-layout+blob", "http", "https", "git"} {
		pol.Rules = append(pol.Rules, rule(spb.PolicyAction_DENY, scheme+"://*", spb.MatchType_WILDCARD))
	}
	if l == nil {
		return pol
	}
	seen := map[string]bool{}
	for _, im := range l.Images {
		if seen[im.Digest] {
			continue
		}
		seen[im.Digest] = true
		pol.Rules = append(pol.Rules, rule(spb.PolicyAction_ALLOW, "oci-layout://*@"+im.Digest, spb.MatchType_WILDCARD))
	}
	for _, u := range l.URLs {
		pol.Rules = append(pol.Rules, pinRule(u.URL, spb.MatchType_EXACT, "", pb.AttrHTTPChecksum, u.Digest)...)
	}
	for _, g := range l.Git {
		id := gitIdentifier(g.Remote)
		withRef := id
		if g.Ref != "" {
			withRef += "#" + g.Ref
		}
		pol.Rules = append(pol.Rules, pinRule(withRef, spb.MatchType_EXACT, "", pb.AttrGitChecksum, g.Commit)...)
		// Same ref with a subdirectory: "#ref:subdir". A wildcard CONVERT
		// rewrites the identifier to its Updates.Identifier, so keep it
		// unchanged with a back-reference to the matched subdirectory.
		prefix := id + "#" + g.Ref + ":"
		pol.Rules = append(pol.Rules, pinRule(prefix+"*", spb.MatchType_WILDCARD, strings.ReplaceAll(prefix, "$", "$$")+"${1}", pb.AttrGitChecksum, g.Commit)...)
	}
	return pol
}

// pinRule returns a CONVERT rule that forces attr=value on sources matching
// id (keeping the identifier: dest is "" for exact selectors, a
// back-reference template for wildcards) and an ALLOW rule for id that only
// matches with attr=value.
func pinRule(id string, mt spb.MatchType, dest, attr, value string) []*spb.Rule {
	return []*spb.Rule{
		{
			Action:   spb.PolicyAction_CONVERT,
			Selector: &spb.Selector{Identifier: id, MatchType: mt},
			Updates:  &spb.Update{Identifier: dest, Attrs: map[string]string{attr: value}},
		},
		{
			Action: spb.PolicyAction_ALLOW,
			Selector: &spb.Selector{Identifier: id, MatchType: mt, Constraints: []*spb.AttrConstraint{
				{Key: attr, Value: value, Condition: spb.AttrMatch_EQUAL},
			}},
		},
	}
}

// gitIdentifier mirrors llb.Git: "git://" + host + path, independent of the
// transport (https, ssh, git).
func gitIdentifier(remote string) string {
	u, err := gitutil.ParseURL(remote)
	if err != nil {
		u, err = gitutil.ParseURL("https://" + remote)
	}
	if err != nil {
		return "git://" + remote
	}
	return "git://" + u.Host + path.Join("/", u.Path)
}

// Material is one resolved dependency of a build, in the shape of SLSA
// provenance resolvedDependencies: a URI and a digest set keyed by algorithm
// ("sha256" hex without prefix, "gitCommit").
type Material struct {
	URI    string
	Digest map[string]string
}

func hexOf(d string) string { return strings.TrimPrefix(d, prefixSHA256) }

// Materials lists every locked input: the source, the Dockerfile, each
// image, URL and git repository.
func (l *Lock) Materials() []Material {
	if l == nil {
		return nil
	}
	var out []Material
	src := Material{Digest: map[string]string{"sha256": hexOf(l.Source.Digest)}}
	switch {
	case l.Source.Kind == SourceKindGit && l.Source.Repository != "":
		src.URI = "git+" + l.Source.Repository + "@" + l.Source.Commit
		src.Digest["gitCommit"] = l.Source.Commit
	case l.Source.Kind == SourceKindGit:
		src.URI = "git+file:" + l.Source.Commit
		src.Digest["gitCommit"] = l.Source.Commit
	default:
		src.URI = "context:" + l.Source.Digest
	}
	out = append(out, src)
	out = append(out, Material{
		URI:    "file:" + l.Dockerfile.Path,
		Digest: map[string]string{"sha256": hexOf(l.Dockerfile.Digest)},
	})
	for _, im := range l.Images {
		out = append(out, Material{URI: imagePURL(im.Name, l.Platform), Digest: map[string]string{"sha256": hexOf(im.Digest)}})
	}
	for _, u := range l.URLs {
		out = append(out, Material{URI: u.URL, Digest: map[string]string{"sha256": hexOf(u.Digest)}})
	}
	for _, g := range l.Git {
		uri := g.Remote
		if g.Ref != "" {
			uri += "#" + g.Ref
		}
		out = append(out, Material{URI: uri, Digest: map[string]string{"gitCommit": g.Commit}})
	}
	for _, m := range l.GoModules {
		out = append(out, Material{URI: GoModulePURL(m), Digest: goModuleDigest(m)})
	}
	return out
}

// GoModulePURL is a Go module version's package URL,
// pkg:golang/PATH@VERSION.
func GoModulePURL(m gomod.Module) string { return "pkg:golang/" + m.Path + "@" + m.Version }

// goModuleDigest is a module's h1 hash as an in-toto digest set: dirHash
// is the sha256 of the module's dirhash summary, hex-encoded.
func goModuleDigest(m gomod.Module) map[string]string {
	h := m.Sum
	if h == "" {
		h = m.GoModSum
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "h1:"))
	if err != nil || len(raw) != sha256.Size {
		return nil
	}
	return map[string]string{"dirHash": hex.EncodeToString(raw)}
}

// imagePURL renders an image reference as a package URL
// (pkg:docker/NAMESPACE/NAME@VERSION?platform=...), like BuildKit's
// provenance does.
func imagePURL(ref, platform string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "pkg:docker/" + ref
	}
	repo := r.Context()
	p := repo.RepositoryStr()
	q := url.Values{}
	if reg := repo.RegistryStr(); reg != name.DefaultRegistry {
		q.Set("repository_url", reg+"/"+p)
	}
	if platform != "" {
		q.Set("platform", platform)
	}
	version := r.Identifier()
	if t, ok := r.(name.Tag); ok {
		version = t.TagStr()
	}
	s := "pkg:docker/" + p + "@" + url.PathEscape(version)
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}
