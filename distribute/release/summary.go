package release

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
)

// What the operations of `twinforge release` say they did, one line each,
// next to the operations so that a program running them reports them the
// same way.

// Written says that GenerateKey wrote the key pair.
func (k *Key) Written() string {
	return fmt.Sprintf("wrote %s and %s.pub (key id %s)", k.Path, k.Path, k.ID())
}

// GeneratedRoot says that InitKeyFiles.Config generated the root key k,
// which must be kept offline.
func (k *Key) GeneratedRoot() string {
	return fmt.Sprintf("generated root key %s (key id %s): keep it offline", k.Path, k.ID())
}

// Initialised says that Init made r with cfg, and what to serve.
func (r *Repository) Initialised(cfg InitConfig) string {
	return fmt.Sprintf("initialised release index %s: root v%d (%d of %d keys), serve %s", r.Dir(), r.RootVersion(), cfg.RootThreshold, len(cfg.RootKeys), filepath.Join(r.Dir(), MetadataDir))
}

// TeamAdded says that AddTeam delegated paths to team, threshold of keys
// keys signing its releases.
func (r *Repository) TeamAdded(team string, paths []string, threshold, keys int) string {
	return fmt.Sprintf("team %s releases %s (%d of %d keys); index version %d", team, strings.Join(paths, ", "), threshold, keys, r.Version())
}

// TeamKeyAdded says that AddTeamKey gave team the key keyID.
func (r *Repository) TeamKeyAdded(team, keyID string) string {
	return fmt.Sprintf("team %s: added key %s; index version %d", team, keyID, r.Version())
}

// TeamKeyRevoked says that RevokeTeamKey took keyID from team, and what
// that means for its releases.
func (r *Repository) TeamKeyRevoked(team, keyID string) string {
	return fmt.Sprintf("team %s: revoked key %s; its releases are refused until signed again (release team sign); index version %d", team, keyID, r.Version())
}

// TeamSigned says that SignTeam signed team's releases again.
func (r *Repository) TeamSigned(team string) string {
	return fmt.Sprintf("team %s: releases signed again; index version %d", team, r.Version())
}

// Released says that Release recorded t.
func (r *Repository) Released(t *Target) string {
	return fmt.Sprintf("released %s as %s (provenance %s), signed by %s; index version %d", t.Path(), t.Digest, t.ProvenanceName(), t.Role, r.Version())
}

// RootRotated says that RotateRoot (RotationPlan.Apply) wrote a new root.
func (r *Repository) RootRotated() string {
	return fmt.Sprintf("wrote root v%d; index version %d", r.RootVersion(), r.Version())
}

// Refreshed says that Refresh signed the index again.
func (r *Repository) Refreshed() string {
	return fmt.Sprintf("index version %d signed again", r.Version())
}

// Pushed says that PushIndex pushed r's files to ref as res, and how
// readers reach them there.
func (r *Repository) Pushed(ref name.Tag, res *distribute.PushResult) string {
	return fmt.Sprintf("pushed index version %d to %s@%s (read it with --release-repo %s%s)", r.Version(), ref, res.Digest, OCIScheme, ref)
}
