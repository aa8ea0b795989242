package hermetic

import (
	"path"
	"strings"

	"github.com/moby/buildkit/solver/pb"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	"github.com/moby/buildkit/util/gitutil"
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

func hexOf(d string) string { return strings.TrimPrefix(d, prefixSHA256) }
