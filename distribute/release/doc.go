// Package release keeps twinforge's release index: a TUF repository
// (github.com/theupdateframework/go-tuf/v2) that says, signed, which image
// digest each released tag names, so that a compromised registry or
// mirror can neither serve an older digest for a tag (rollback), nor keep
// serving yesterday's index (freeze), nor release with one stolen key.
//
// # The index
//
// The repository has the four top-level roles, each with its keys and
// threshold in root: root (offline keys, e.g. 2 of 3), targets, snapshot
// and timestamp (online keys, kept in the repository's keys directory
// unless given). Targets delegates to one role per team, restricted to
// the image paths the team owns (TUF path patterns over REPOSITORY:TAG,
// e.g. "payments/*"), terminating, with the team's own keys and
// threshold: one team can never release another's images. A release is a
// target named REPOSITORY:TAG (the repository path without registry host,
// so the same index holds in every region) whose length and sha256 are the
// image manifest's, so its sha256 is the image digest; its custom field
// names the manifest media type and the sha256 of the image's SLSA
// provenance statement. The target files themselves are not published:
// the manifest is in the registry, and readers compare its digest with the
// target's. Timestamp expires after a day unless re-signed
// (Repository.Refresh), snapshot after a week.
//
// Repository writes the index on disk (Init, Open, AddTeam, Release,
// RevokeTeamKey, AddTeamKey, SignTeam, RotateRoot, Refresh): consistent
// snapshots, every new file written before timestamp.json, every
// signature checked against its threshold before anything is written. Its
// repository/ directory is served over HTTP as it is; PushIndex packs it
// into an OCI artifact (IndexArtifactType) so that it travels with the
// images, and Replicate copies a verified index to every region.
//
// # Readers
//
// Client reads an index over HTTP or from an OCI artifact
// ("oci://REGISTRY/REPOSITORY[:TAG]") with go-tuf's client
// (metadata/updater): root rotations, then timestamp, snapshot and
// targets, each against its threshold, its expiry and the versions this
// reader trusted before, which it keeps in a state directory per region;
// then each team's role, against the team's keys and threshold. Index
// answers lookups from memory: Verify refuses a digest the index does not
// list for the tag, and VerifyProvenance a provenance other than the one
// released. Every refusal is an *Error whose Check names what failed:
// CheckExpired (stale), CheckRollback, CheckThreshold, CheckDelegation (a
// path outside a team's delegation), CheckNotListed, CheckProvenance,
// CheckIntegrity. A repository that cannot be read wraps ErrUnavailable.
// ReleasedProvenance keeps, of an image's provenance bundles, the one its
// release names.
//
// # Key files
//
// The release commands name keys by file: LoadKeys and LoadPublicKeys
// load them, InitKeyFiles.Config loads (or generates) the keys of Init,
// and RootRotation.Plan reads a rotation's ROLE=FILE, ROLE=KEYID and
// ROLE=N values into a RotationPlan whose Apply writes the new root and
// stores the new online keys. Their errors name the flag at fault.
// Index.Listing and ReplicationReport are what `twinforge release list`
// and `twinforge replicate` print.
//
// The package never prints; it reaches the network only through the
// repository and registries it is given.
package release
