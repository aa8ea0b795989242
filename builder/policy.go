package builder

import (
	spb "github.com/moby/buildkit/sourcepolicy/pb"
)

// deniedSchemes are the source kinds a build may never reach unless a rule
// after them allows one source of that kind by its pinned identity. The
// "+blob" kinds are single blobs of an image (ADD of a registry or layout
// blob), which "docker-image://*" and "oci-layout://*" do not match.
var deniedSchemes = []string{"docker-image", "docker-image+blob", "oci-layout", "oci-layout+blob", "http", "https", "git"}

// DefaultPolicy denies every image, URL and git source, then allows each
// base image's OCI layout by digest. BuildKit applies the last matching
// rule, so the denials come first.
func DefaultPolicy(bases []BaseImage) *spb.Policy {
	p := &spb.Policy{Version: 1}
	for _, scheme := range deniedSchemes {
		p.Rules = append(p.Rules, &spb.Rule{
			Action:   spb.PolicyAction_DENY,
			Selector: &spb.Selector{Identifier: scheme + "://*", MatchType: spb.MatchType_WILDCARD},
		})
	}
	for _, b := range bases {
		p.Rules = append(p.Rules, AllowLayoutDigest(b.Digest))
	}
	return p
}

// AllowLayoutDigest is the rule that lets a build read one OCI layout image,
// whatever store it is served from, by its digest.
func AllowLayoutDigest(digest string) *spb.Rule {
	return &spb.Rule{
		Action:   spb.PolicyAction_ALLOW,
		Selector: &spb.Selector{Identifier: "oci-layout://*@" + digest, MatchType: spb.MatchType_WILDCARD},
	}
}
