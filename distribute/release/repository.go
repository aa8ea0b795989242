package release

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Layout of a repository directory.
const (
	// MetadataDir holds what is served: the metadata files (and the
	// targets/ directory of target files below it).
	MetadataDir = "repository"
	// KeysDir holds the online keys Init generated (targets, snapshot,
	// timestamp); it must never be served.
	KeysDir = "keys"
)

// Expiries says how long each role's metadata stays valid after it is
// signed. A reader refuses expired metadata: the timestamp role must be
// re-signed (Repository.Refresh) more often than Timestamp.
type Expiries struct {
	Root, Targets, Team, Snapshot, Timestamp time.Duration
}

// DefaultExpiries are the expiries unless WithExpiries says otherwise: a
// year for root, 90 days for targets and teams, a week for snapshot and a
// day for timestamp.
var DefaultExpiries = Expiries{
	Root:      365 * 24 * time.Hour,
	Targets:   90 * 24 * time.Hour,
	Team:      90 * 24 * time.Hour,
	Snapshot:  7 * 24 * time.Hour,
	Timestamp: 24 * time.Hour,
}

// Option configures Init and Open.
type Option func(*repoOptions) error

type repoOptions struct {
	expiries Expiries
	now      func() time.Time
	keys     map[string]*Key
}

// WithExpiries sets the roles' expiries; zero fields keep their default.
// The default is DefaultExpiries.
func WithExpiries(e Expiries) Option {
	return func(o *repoOptions) error {
		for _, d := range []time.Duration{e.Root, e.Targets, e.Team, e.Snapshot, e.Timestamp} {
			if d < 0 {
				return fmt.Errorf("WithExpiries: negative expiry %s", d)
			}
		}
		set := func(dst *time.Duration, v time.Duration) {
			if v > 0 {
				*dst = v
			}
		}
		set(&o.expiries.Root, e.Root)
		set(&o.expiries.Targets, e.Targets)
		set(&o.expiries.Team, e.Team)
		set(&o.expiries.Snapshot, e.Snapshot)
		set(&o.expiries.Timestamp, e.Timestamp)
		return nil
	}
}

// WithClock sets the time metadata is signed at. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *repoOptions) error {
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithRoleKey signs role ("targets", "snapshot" or "timestamp") with k
// instead of the key Init stored in the keys directory.
func WithRoleKey(role string, k *Key) Option {
	return func(o *repoOptions) error {
		if !slices.Contains(onlineRoles, role) {
			return fmt.Errorf("WithRoleKey: role %q: want one of %s", role, strings.Join(onlineRoles, ", "))
		}
		if k == nil {
			return errors.New("WithRoleKey: nil key")
		}
		o.keys[role] = k
		return nil
	}
}

var onlineRoles = []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

func makeRepoOptions(opts []Option) (*repoOptions, error) {
	o := &repoOptions{expiries: DefaultExpiries, now: time.Now, keys: map[string]*Key{}}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Repository is a release index kept on disk: a TUF repository with the
// four top-level roles, one delegated targets role per team, and
// consistent snapshots. Its Dir/repository directory is what readers are
// served (over HTTP, or packed into an OCI artifact with Files); every
// change writes new versioned files first and timestamp.json last, so a
// reader sees the old index or the new one. A change that fails writes
// nothing; Open the repository again before the next. A Repository is not
// safe for concurrent use, nor for use by two processes at once.
type Repository struct {
	dir string
	o   *repoOptions

	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	teams     map[string]*metadata.Metadata[metadata.TargetsType]
	// raw are the bytes of each role's current file, as written.
	raw map[string][]byte
}

// InitConfig is what Init needs.
type InitConfig struct {
	// RootKeys sign the root role; RootThreshold of them must sign every
	// new root. Required.
	RootKeys      []*Key
	RootThreshold int
	// TargetsKey, SnapshotKey and TimestampKey are the online roles' keys
	// (threshold 1 each; RotateRoot changes them). Any left nil is
	// generated into Dir/keys.
	TargetsKey   *Key
	SnapshotKey  *Key
	TimestampKey *Key
}

// Init creates a new release index in dir: root (version 1), targets,
// snapshot and timestamp, signed, with no team and no release. It refuses
// a directory that already holds one.
func Init(dir string, cfg InitConfig, opts ...Option) (*Repository, error) {
	o, err := makeRepoOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if len(cfg.RootKeys) == 0 {
		return nil, errors.New("initialising release index: no root keys")
	}
	if cfg.RootThreshold < 1 || cfg.RootThreshold > len(cfg.RootKeys) {
		return nil, fmt.Errorf("initialising release index: root threshold %d: want 1 to %d (the number of root keys)", cfg.RootThreshold, len(cfg.RootKeys))
	}
	if _, err := os.Stat(filepath.Join(dir, MetadataDir, "root.json")); err == nil {
		return nil, fmt.Errorf("initialising release index: %s already holds one", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, MetadataDir), 0o755); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	keyFor := func(role string, given *Key) (*Key, error) {
		if given != nil {
			return given, nil
		}
		if k := o.keys[role]; k != nil {
			return k, nil
		}
		return GenerateKey(filepath.Join(dir, KeysDir, role+".pem"))
	}
	if cfg.TargetsKey, err = keyFor(metadata.TARGETS, cfg.TargetsKey); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if cfg.SnapshotKey, err = keyFor(metadata.SNAPSHOT, cfg.SnapshotKey); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if cfg.TimestampKey, err = keyFor(metadata.TIMESTAMP, cfg.TimestampKey); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	o.keys[metadata.TARGETS] = cfg.TargetsKey
	o.keys[metadata.SNAPSHOT] = cfg.SnapshotKey
	o.keys[metadata.TIMESTAMP] = cfg.TimestampKey

	r := &Repository{dir: dir, o: o, teams: map[string]*metadata.Metadata[metadata.TargetsType]{}, raw: map[string][]byte{}}
	now := o.now().UTC()
	r.root = metadata.Root(now.Add(o.expiries.Root))
	r.root.Signed.ConsistentSnapshot = true
	add := func(role string, keys ...*Key) error {
		for _, k := range keys {
			tk, err := metadata.KeyFromPublicKey(k.public)
			if err != nil {
				return err
			}
			if err := r.root.Signed.AddKey(tk, role); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(metadata.ROOT, cfg.RootKeys...); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if err := add(metadata.TARGETS, cfg.TargetsKey); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if err := add(metadata.SNAPSHOT, cfg.SnapshotKey); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if err := add(metadata.TIMESTAMP, cfg.TimestampKey); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	r.root.Signed.Roles[metadata.ROOT].Threshold = cfg.RootThreshold
	if err := signRoot(r.root, nil, cfg.RootKeys); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	if err := r.writeRoot(); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	r.targets = metadata.Targets(now.Add(o.expiries.Targets))
	r.targets.Signed.Version = 0
	r.snapshot = metadata.Snapshot(now.Add(o.expiries.Snapshot))
	r.snapshot.Signed.Version = 0
	r.timestamp = metadata.Timestamp(now.Add(o.expiries.Timestamp))
	r.timestamp.Signed.Version = 0
	if err := r.commit([]string{metadata.TARGETS}, nil); err != nil {
		return nil, fmt.Errorf("initialising release index: %w", err)
	}
	return r, nil
}

// Open reads the release index in dir and the online keys in dir/keys
// (WithRoleKey gives others).
func Open(dir string, opts ...Option) (*Repository, error) {
	o, err := makeRepoOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("opening release index: %w", err)
	}
	r := &Repository{dir: dir, o: o, teams: map[string]*metadata.Metadata[metadata.TargetsType]{}, raw: map[string][]byte{}}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("opening release index %s: %w", dir, err)
	}
	for _, role := range onlineRoles {
		if o.keys[role] != nil {
			continue
		}
		k, err := LoadKey(filepath.Join(dir, KeysDir, role+".pem"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // held elsewhere: give it with WithRoleKey
		}
		if err != nil {
			return nil, fmt.Errorf("opening release index %s: %w", dir, err)
		}
		o.keys[role] = k
	}
	return r, nil
}

func (r *Repository) metaPath(name string) string {
	return filepath.Join(r.dir, MetadataDir, name)
}

func (r *Repository) load() error {
	data, err := os.ReadFile(r.metaPath("root.json"))
	if err != nil {
		return fmt.Errorf("no release index here (run `twinforge release init`): %w", err)
	}
	if r.root, err = metadata.Root().FromBytes(data); err != nil {
		return fmt.Errorf("root.json: %w", err)
	}
	if data, err = os.ReadFile(r.metaPath("timestamp.json")); err != nil {
		return err
	}
	if r.timestamp, err = metadata.Timestamp().FromBytes(data); err != nil {
		return fmt.Errorf("timestamp.json: %w", err)
	}
	sv := r.timestamp.Signed.Meta["snapshot.json"].Version
	if data, err = os.ReadFile(r.metaPath(fmt.Sprintf("%d.snapshot.json", sv))); err != nil {
		return err
	}
	if r.snapshot, err = metadata.Snapshot().FromBytes(data); err != nil {
		return fmt.Errorf("snapshot.json: %w", err)
	}
	r.raw[metadata.SNAPSHOT] = data
	loadTargets := func(role string) (*metadata.Metadata[metadata.TargetsType], error) {
		mf, ok := r.snapshot.Signed.Meta[role+".json"]
		if !ok {
			return nil, fmt.Errorf("snapshot lists no %s.json", role)
		}
		data, err := os.ReadFile(r.metaPath(fmt.Sprintf("%d.%s.json", mf.Version, role)))
		if err != nil {
			return nil, err
		}
		md, err := metadata.Targets().FromBytes(data)
		if err != nil {
			return nil, fmt.Errorf("%s.json: %w", role, err)
		}
		r.raw[role] = data
		return md, nil
	}
	if r.targets, err = loadTargets(metadata.TARGETS); err != nil {
		return err
	}
	for _, team := range r.teamNames() {
		if _, ok := r.snapshot.Signed.Meta[team+".json"]; !ok {
			continue // a team that has released nothing yet
		}
		md, err := loadTargets(team)
		if err != nil {
			return err
		}
		r.teams[team] = md
	}
	return nil
}

func (r *Repository) teamNames() []string {
	var out []string
	if d := r.targets.Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			out = append(out, role.Name)
		}
	}
	return out
}

func (r *Repository) delegation(team string) *metadata.DelegatedRole {
	if d := r.targets.Signed.Delegations; d != nil {
		for i := range d.Roles {
			if d.Roles[i].Name == team {
				return &d.Roles[i]
			}
		}
	}
	return nil
}

// Team is a delegated role as the repository holds it.
type Team struct {
	Name      string   `json:"name"`
	Paths     []string `json:"paths"`
	KeyIDs    []string `json:"keyIDs"`
	Threshold int      `json:"threshold"`
	// Version is the version of the team's metadata; 0 before its first
	// release.
	Version int64 `json:"version"`
}

// Teams lists the teams in delegation order.
func (r *Repository) Teams() []Team {
	var out []Team
	if d := r.targets.Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			t := Team{Name: role.Name, Paths: role.Paths, KeyIDs: role.KeyIDs, Threshold: role.Threshold}
			if md := r.teams[role.Name]; md != nil {
				t.Version = md.Signed.Version
			}
			out = append(out, t)
		}
	}
	return out
}

// Version is the snapshot version: it grows with every change.
func (r *Repository) Version() int64 { return r.snapshot.Signed.Version }

// RootVersion is the version of the current root.
func (r *Repository) RootVersion() int64 { return r.root.Signed.Version }

// AddTeam delegates paths to a new team, whose keys (threshold of them)
// then sign its releases. Paths are TUF path patterns over
// REPOSITORY:TAG: "payments/*" is every repository directly under
// payments/ with any tag, "payments/app:*" every tag of one repository.
// The delegation is terminating: a reader never looks past the team for a
// path it covers. Signed with the targets key.
func (r *Repository) AddTeam(team string, keys []crypto.PublicKey, threshold int, paths []string) error {
	if err := r.addTeam(team, keys, threshold, paths); err != nil {
		return fmt.Errorf("adding team %s: %w", team, err)
	}
	return nil
}

func (r *Repository) addTeam(team string, keys []crypto.PublicKey, threshold int, paths []string) error {
	switch {
	case !roleName.MatchString(team) || slices.Contains([]string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}, team):
		return fmt.Errorf("team name %q: want lowercase letters, digits, '.', '_' or '-', and not a top-level role name", team)
	case r.delegation(team) != nil:
		return errors.New("the team exists already")
	case len(keys) == 0:
		return errors.New("no keys: a team signs its releases with its own keys")
	case threshold < 1 || threshold > len(keys):
		return fmt.Errorf("threshold %d: want 1 to %d (the number of keys)", threshold, len(keys))
	case len(paths) == 0:
		return errors.New("no paths: say which REPOSITORY:TAG patterns the team releases")
	}
	for _, p := range paths {
		if err := checkPathPattern(p); err != nil {
			return err
		}
	}
	if r.targets.Signed.Delegations == nil {
		r.targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	role := metadata.DelegatedRole{Name: team, Threshold: threshold, Terminating: true, Paths: slices.Clone(paths), KeyIDs: []string{}}
	r.targets.Signed.Delegations.Roles = append(r.targets.Signed.Delegations.Roles, role)
	for _, pub := range keys {
		k, err := metadata.KeyFromPublicKey(pub)
		if err != nil {
			return err
		}
		if err := r.targets.Signed.AddKey(k, team); err != nil {
			return err
		}
	}
	return r.commit([]string{metadata.TARGETS}, nil)
}

func checkPathPattern(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
		return fmt.Errorf("path pattern %q: want a relative REPOSITORY:TAG pattern such as team/* or team/app:*", p)
	}
	if _, err := filepath.Match(p, ""); err != nil {
		return fmt.Errorf("path pattern %q: %v", p, err)
	}
	return nil
}

// AddTeamKey gives a team one more key. Signed with the targets key.
func (r *Repository) AddTeamKey(team string, pub crypto.PublicKey) error {
	if r.delegation(team) == nil {
		return fmt.Errorf("adding a key to team %s: no such team", team)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return fmt.Errorf("adding a key to team %s: %w", team, err)
	}
	if err := r.targets.Signed.AddKey(k, team); err != nil {
		return fmt.Errorf("adding a key to team %s: %w", team, err)
	}
	if err := r.commit([]string{metadata.TARGETS}, nil); err != nil {
		return fmt.Errorf("adding a key to team %s: %w", team, err)
	}
	return nil
}

// RevokeTeamKey takes a key away from a team. What the team signed with
// it no longer counts towards its threshold: readers refuse the team's
// releases until the team re-signs them with its remaining or new keys
// (SignTeam). Signed with the targets key.
func (r *Repository) RevokeTeamKey(team, keyID string) error {
	d := r.delegation(team)
	if d == nil {
		return fmt.Errorf("revoking a key of team %s: no such team", team)
	}
	if !slices.Contains(d.KeyIDs, keyID) {
		return fmt.Errorf("revoking a key of team %s: the team has no key %s (its keys: %s)", team, keyID, strings.Join(d.KeyIDs, ", "))
	}
	if err := r.targets.Signed.RevokeKey(keyID, team); err != nil {
		return fmt.Errorf("revoking a key of team %s: %w", team, err)
	}
	if err := r.commit([]string{metadata.TARGETS}, nil); err != nil {
		return fmt.Errorf("revoking a key of team %s: %w", team, err)
	}
	return nil
}

// SignTeam signs the team's releases again, as a new version, with keys
// (after a key rotation or revocation).
func (r *Repository) SignTeam(team string, keys []*Key) error {
	md := r.teams[team]
	if r.delegation(team) == nil {
		return fmt.Errorf("signing team %s: no such team", team)
	}
	if md == nil {
		md = metadata.Targets(r.o.now().UTC())
		md.Signed.Version = 0
		r.teams[team] = md
	}
	if err := r.commit(nil, map[string][]*Key{team: keys}); err != nil {
		return fmt.Errorf("signing team %s: %w", team, err)
	}
	return nil
}

// Release adds (or moves) a tag: t.Repository:t.Tag names t.Digest, with
// its provenance digest, signed by team with keys (at least the team's
// threshold of its keys). The path must be one the team was delegated,
// and the first delegation that covers it: a reader would never consult
// the team for it otherwise. team "" releases through the top-level
// targets role, with the targets key.
func (r *Repository) Release(team string, t Target, keys []*Key) (*Target, error) {
	tf, err := targetFile(&t)
	if err != nil {
		return nil, fmt.Errorf("releasing: %w", err)
	}
	path := t.Path()
	if team == "" {
		t.Role = metadata.TARGETS
		r.targets.Signed.Targets[path] = tf
		if err := r.commit([]string{metadata.TARGETS}, nil); err != nil {
			return nil, fmt.Errorf("releasing %s: %w", path, err)
		}
		return &t, nil
	}
	d := r.delegation(team)
	if d == nil {
		return nil, fmt.Errorf("releasing %s: no team %s (teams: %s)", path, team, strings.Join(r.teamNames(), ", "))
	}
	if ok, _ := d.IsDelegatedPath(path); !ok {
		return nil, refusef(CheckDelegation, team, "%s is outside the paths delegated to team %s (%s)", path, team, strings.Join(d.Paths, ", "))
	}
	for _, other := range r.targets.Signed.Delegations.Roles {
		if ok, _ := other.IsDelegatedPath(path); ok {
			if other.Name != team {
				return nil, refusef(CheckDelegation, team, "%s is delegated to team %s first: readers would never consult %s for it", path, other.Name, team)
			}
			break
		}
	}
	md := r.teams[team]
	if md == nil {
		md = metadata.Targets(r.o.now().UTC())
		md.Signed.Version = 0
		r.teams[team] = md
	}
	prev, had := md.Signed.Targets[path]
	md.Signed.Targets[path] = tf
	if err := r.commit(nil, map[string][]*Key{team: keys}); err != nil {
		if had {
			md.Signed.Targets[path] = prev
		} else {
			delete(md.Signed.Targets, path)
		}
		return nil, fmt.Errorf("releasing %s: %w", path, err)
	}
	t.Role = team
	return &t, nil
}

// Targets lists every release the repository holds, sorted by path.
func (r *Repository) Targets() ([]*Target, error) {
	var out []*Target
	add := func(role string, md *metadata.Metadata[metadata.TargetsType]) error {
		for path, tf := range md.Signed.Targets {
			t, err := targetFrom(path, role, tf)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	}
	if err := add(metadata.TARGETS, r.targets); err != nil {
		return nil, err
	}
	for team, md := range r.teams {
		if err := add(team, md); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path() < out[j].Path() })
	return out, nil
}

// Refresh signs snapshot and timestamp again with fresh expiries, as a
// new version: run it more often than the timestamp expiry, or readers
// refuse the index as stale.
func (r *Repository) Refresh() error {
	if err := r.commit(nil, nil); err != nil {
		return fmt.Errorf("refreshing release index: %w", err)
	}
	return nil
}

// RootChange is a new root: keys added to and removed from roles, and new
// thresholds. Roles are "root", "targets", "snapshot" and "timestamp".
type RootChange struct {
	Add        map[string][]crypto.PublicKey
	Remove     map[string][]string // key IDs
	Thresholds map[string]int
}

// RotateRoot writes the next root version with the change, signed by
// rootKeys: they must reach the threshold of the current root and of the
// new one, which readers check before they follow it. When the keys of
// targets, snapshot or timestamp change, give the new online keys with
// WithRoleKey (and store them where the repository keeps its keys): the
// roles are signed again with them.
func (r *Repository) RotateRoot(change RootChange, rootKeys []*Key) error {
	if err := r.rotateRoot(change, rootKeys); err != nil {
		return fmt.Errorf("rotating root: %w", err)
	}
	return nil
}

func (r *Repository) rotateRoot(change RootChange, rootKeys []*Key) error {
	old := r.root
	data, err := old.ToBytes(false)
	if err != nil {
		return err
	}
	next, err := metadata.Root().FromBytes(data)
	if err != nil {
		return err
	}
	roles := []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}
	for role, ids := range change.Remove {
		if !slices.Contains(roles, role) {
			return fmt.Errorf("role %q: want one of %s", role, strings.Join(roles, ", "))
		}
		for _, id := range ids {
			if !slices.Contains(next.Signed.Roles[role].KeyIDs, id) {
				return fmt.Errorf("role %s has no key %s", role, id)
			}
			if err := next.Signed.RevokeKey(id, role); err != nil {
				return err
			}
		}
	}
	for role, pubs := range change.Add {
		if !slices.Contains(roles, role) {
			return fmt.Errorf("role %q: want one of %s", role, strings.Join(roles, ", "))
		}
		for _, pub := range pubs {
			k, err := metadata.KeyFromPublicKey(pub)
			if err != nil {
				return err
			}
			if err := next.Signed.AddKey(k, role); err != nil {
				return err
			}
		}
	}
	for role, th := range change.Thresholds {
		if !slices.Contains(roles, role) {
			return fmt.Errorf("role %q: want one of %s", role, strings.Join(roles, ", "))
		}
		next.Signed.Roles[role].Threshold = th
	}
	for _, role := range roles {
		rl := next.Signed.Roles[role]
		if rl.Threshold < 1 || rl.Threshold > len(rl.KeyIDs) {
			return fmt.Errorf("role %s would have threshold %d with %d keys", role, rl.Threshold, len(rl.KeyIDs))
		}
	}
	next.Signed.Version = old.Signed.Version + 1
	next.Signed.Expires = r.o.now().UTC().Add(r.o.expiries.Root)
	if err := signRoot(next, old, rootKeys); err != nil {
		return err
	}
	// Online roles whose keys changed are signed again with the new keys
	// before anything is written.
	for _, role := range onlineRoles {
		if len(change.Add[role]) == 0 && len(change.Remove[role]) == 0 {
			continue
		}
		if k := r.o.keys[role]; k == nil || !slices.Contains(next.Signed.Roles[role].KeyIDs, k.ID()) {
			return fmt.Errorf("the %s keys change, and no new %s key is given to sign it with", role, role)
		}
	}
	var resign []string
	if len(change.Add[metadata.TARGETS]) > 0 || len(change.Remove[metadata.TARGETS]) > 0 || change.Thresholds[metadata.TARGETS] > 0 {
		resign = append(resign, metadata.TARGETS)
	}
	return r.commitRoot(next, resign, nil)
}

// signRoot signs a root with the keys it names; the result must verify
// with its own threshold and, for a new version, the previous root's.
func signRoot(next, prev *metadata.Metadata[metadata.RootType], keys []*Key) error {
	next.ClearSignatures()
	signed := map[string]bool{}
	for _, k := range keys {
		if signed[k.id] {
			continue
		}
		inNext := slices.Contains(next.Signed.Roles[metadata.ROOT].KeyIDs, k.id)
		inPrev := prev != nil && slices.Contains(prev.Signed.Roles[metadata.ROOT].KeyIDs, k.id)
		if !inNext && !inPrev {
			return fmt.Errorf("key %s (%s) is not a root key", k.id, k.Path)
		}
		if _, err := next.Sign(k.signer); err != nil {
			return fmt.Errorf("signing root with %s: %w", k.id, err)
		}
		signed[k.id] = true
	}
	if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
		return refusef(CheckThreshold, metadata.ROOT, "the new root needs %d signatures of its own root keys: %v", next.Signed.Roles[metadata.ROOT].Threshold, err)
	}
	if prev != nil {
		if err := prev.VerifyDelegate(metadata.ROOT, next); err != nil {
			return refusef(CheckThreshold, metadata.ROOT, "the new root needs %d signatures of the current root keys: %v", prev.Signed.Roles[metadata.ROOT].Threshold, err)
		}
	}
	return nil
}

func (r *Repository) writeRoot() error {
	data, err := r.root.ToBytes(true)
	if err != nil {
		return err
	}
	if err := writeAtomic(r.metaPath(fmt.Sprintf("%d.root.json", r.root.Signed.Version)), data); err != nil {
		return err
	}
	return writeAtomic(r.metaPath("root.json"), data)
}

// commit signs the changed roles as new versions (targets with the
// online targets key, teams with the keys given), then a new snapshot and
// timestamp, checks every signature against its threshold, and only then
// writes the files: a new root first when newRoot is set, then the
// versioned files, timestamp.json last. On error nothing is written and
// the repository is as it was.
func (r *Repository) commit(changed []string, teamKeys map[string][]*Key) (err error) {
	return r.commitRoot(nil, changed, teamKeys)
}

// state is what commit may change in memory, to restore on failure.
type state struct {
	root     *metadata.Metadata[metadata.RootType]
	versions map[string]int64
	expires  map[string]time.Time
	sigs     map[string][]metadata.Signature
	snapMeta map[string]*metadata.MetaFiles
	tsMeta   map[string]*metadata.MetaFiles
}

func (r *Repository) save() *state {
	st := &state{root: r.root, versions: map[string]int64{}, expires: map[string]time.Time{}, sigs: map[string][]metadata.Signature{},
		snapMeta: r.snapshot.Signed.Meta, tsMeta: r.timestamp.Signed.Meta}
	st.versions[metadata.TARGETS], st.expires[metadata.TARGETS], st.sigs[metadata.TARGETS] = r.targets.Signed.Version, r.targets.Signed.Expires, r.targets.Signatures
	st.versions[metadata.SNAPSHOT], st.expires[metadata.SNAPSHOT], st.sigs[metadata.SNAPSHOT] = r.snapshot.Signed.Version, r.snapshot.Signed.Expires, r.snapshot.Signatures
	st.versions[metadata.TIMESTAMP], st.expires[metadata.TIMESTAMP], st.sigs[metadata.TIMESTAMP] = r.timestamp.Signed.Version, r.timestamp.Signed.Expires, r.timestamp.Signatures
	for team, md := range r.teams {
		st.versions[team], st.expires[team], st.sigs[team] = md.Signed.Version, md.Signed.Expires, md.Signatures
	}
	return st
}

func (r *Repository) restore(st *state) {
	r.root = st.root
	r.targets.Signed.Version, r.targets.Signed.Expires, r.targets.Signatures = st.versions[metadata.TARGETS], st.expires[metadata.TARGETS], st.sigs[metadata.TARGETS]
	r.snapshot.Signed.Version, r.snapshot.Signed.Expires, r.snapshot.Signatures = st.versions[metadata.SNAPSHOT], st.expires[metadata.SNAPSHOT], st.sigs[metadata.SNAPSHOT]
	r.timestamp.Signed.Version, r.timestamp.Signed.Expires, r.timestamp.Signatures = st.versions[metadata.TIMESTAMP], st.expires[metadata.TIMESTAMP], st.sigs[metadata.TIMESTAMP]
	r.snapshot.Signed.Meta, r.timestamp.Signed.Meta = st.snapMeta, st.tsMeta
	for team, md := range r.teams {
		if v, ok := st.versions[team]; ok {
			md.Signed.Version, md.Signed.Expires, md.Signatures = v, st.expires[team], st.sigs[team]
		}
	}
}

func (r *Repository) commitRoot(newRoot *metadata.Metadata[metadata.RootType], changed []string, teamKeys map[string][]*Key) (err error) {
	st := r.save()
	defer func() {
		if err != nil {
			r.restore(st)
		}
	}()
	if newRoot != nil {
		r.root = newRoot
	}
	now := r.o.now().UTC()
	files := map[string][]byte{}
	for _, role := range changed {
		if role != metadata.TARGETS {
			return fmt.Errorf("internal: commit of %s", role)
		}
		r.targets.Signed.Version++
		r.targets.Signed.Expires = now.Add(r.o.expiries.Targets)
		if err := r.signTopLevel(r.targets, metadata.TARGETS); err != nil {
			return err
		}
		data, err := r.targets.ToBytes(true)
		if err != nil {
			return err
		}
		files[metadata.TARGETS] = data
	}
	for team, keys := range teamKeys {
		md := r.teams[team]
		md.Signed.Version++
		md.Signed.Expires = now.Add(r.o.expiries.Team)
		if err := signTeam(r.targets, team, md, keys); err != nil {
			return err
		}
		data, err := md.ToBytes(true)
		if err != nil {
			return err
		}
		files[team] = data
	}

	// The snapshot lists every targets role's version, length and hash.
	roleData := func(role string) []byte {
		if d, ok := files[role]; ok {
			return d
		}
		return r.raw[role]
	}
	versionOf := func(role string) int64 {
		if role == metadata.TARGETS {
			return r.targets.Signed.Version
		}
		return r.teams[role].Signed.Version
	}
	snap := r.snapshot
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	for _, role := range append([]string{metadata.TARGETS}, r.teamNames()...) {
		if role != metadata.TARGETS && (r.teams[role] == nil || r.teams[role].Signed.Version == 0) {
			continue
		}
		snap.Signed.Meta[role+".json"] = metaFile(versionOf(role), roleData(role))
	}
	snap.Signed.Version++
	snap.Signed.Expires = now.Add(r.o.expiries.Snapshot)
	if err := r.signTopLevel(snap, metadata.SNAPSHOT); err != nil {
		return err
	}
	snapData, err := snap.ToBytes(true)
	if err != nil {
		return err
	}
	ts := r.timestamp
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(snap.Signed.Version, snapData)}
	ts.Signed.Version++
	ts.Signed.Expires = now.Add(r.o.expiries.Timestamp)
	if err := r.signTopLevel(ts, metadata.TIMESTAMP); err != nil {
		return err
	}
	tsData, err := ts.ToBytes(true)
	if err != nil {
		return err
	}

	// Everything is signed and checked: write.
	if newRoot != nil {
		if err := r.writeRoot(); err != nil {
			return err
		}
	}
	for role, data := range files {
		if err := writeAtomic(r.metaPath(fmt.Sprintf("%d.%s.json", versionOf(role), role)), data); err != nil {
			return err
		}
		r.raw[role] = data
	}
	if err := writeAtomic(r.metaPath(fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)), snapData); err != nil {
		return err
	}
	r.raw[metadata.SNAPSHOT] = snapData
	return writeAtomic(r.metaPath("timestamp.json"), tsData)
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	mf := metadata.MetaFile(version)
	mf.Length = int64(len(data))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}

// signTopLevel signs an online role with its key and checks the root's
// threshold for it.
func (r *Repository) signTopLevel(md interface {
	ClearSignatures()
}, role string) error {
	k := r.o.keys[role]
	if k == nil {
		return fmt.Errorf("no %s key: it is kept in %s, or give it with WithRoleKey", role, filepath.Join(r.dir, KeysDir, role+".pem"))
	}
	md.ClearSignatures()
	var err error
	switch m := md.(type) {
	case *metadata.Metadata[metadata.TargetsType]:
		if _, err = m.Sign(k.signer); err == nil {
			err = r.root.VerifyDelegate(role, m)
		}
	case *metadata.Metadata[metadata.SnapshotType]:
		if _, err = m.Sign(k.signer); err == nil {
			err = r.root.VerifyDelegate(role, m)
		}
	case *metadata.Metadata[metadata.TimestampType]:
		if _, err = m.Sign(k.signer); err == nil {
			err = r.root.VerifyDelegate(role, m)
		}
	}
	if err != nil {
		return classifySigning(role, k, err)
	}
	return nil
}

func classifySigning(role string, k *Key, err error) error {
	var unsigned *metadata.ErrUnsignedMetadata
	if errors.As(err, &unsigned) {
		return refusef(CheckThreshold, role, "the key %s (%s) does not reach the threshold of role %s: %v", k.id, k.Path, role, err)
	}
	return fmt.Errorf("signing %s: %w", role, err)
}

// signTeam signs a team's metadata with the team keys given and checks the
// team's threshold.
func signTeam(targets *metadata.Metadata[metadata.TargetsType], team string, md *metadata.Metadata[metadata.TargetsType], keys []*Key) error {
	var d *metadata.DelegatedRole
	for i := range targets.Signed.Delegations.Roles {
		if targets.Signed.Delegations.Roles[i].Name == team {
			d = &targets.Signed.Delegations.Roles[i]
		}
	}
	md.ClearSignatures()
	n := 0
	for _, k := range keys {
		if !slices.Contains(d.KeyIDs, k.id) {
			return refusef(CheckThreshold, team, "key %s (%s) is not a key of team %s (its keys: %s)", k.id, k.Path, team, strings.Join(d.KeyIDs, ", "))
		}
		if _, err := md.Sign(k.signer); err != nil {
			return fmt.Errorf("signing team %s: %w", team, err)
		}
		n++
	}
	if err := targets.VerifyDelegate(team, md); err != nil {
		return refusef(CheckThreshold, team, "team %s needs %d signatures of its keys, the keys given make %d", team, d.Threshold, n)
	}
	return nil
}

// Files returns the served metadata of the current index: every root
// version, timestamp.json, and the current snapshot, targets and team
// files, by file name. This is what PushIndex packs into an artifact.
func (r *Repository) Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for v := int64(1); v <= r.root.Signed.Version; v++ {
		name := strconv.FormatInt(v, 10) + ".root.json"
		data, err := os.ReadFile(r.metaPath(name))
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	names := []string{"root.json", "timestamp.json", fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)}
	for role, mf := range r.snapshot.Signed.Meta {
		names = append(names, fmt.Sprintf("%d.%s", mf.Version, role))
	}
	for _, name := range names {
		data, err := os.ReadFile(r.metaPath(name))
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, nil
}

// RootJSON is the current root.json: what readers are given out of band
// to start trusting the index (any version works; they follow rotations).
func (r *Repository) RootJSON() ([]byte, error) { return r.root.ToBytes(true) }

// Dir is the repository's directory.
func (r *Repository) Dir() string { return r.dir }

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
