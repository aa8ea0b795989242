package release

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestReleaseLookupVerify(t *testing.T) {
	f := newFixture(t)
	pay := f.teamKey("payments")
	if err := f.repo.AddTeam("payments", []crypto.PublicKey{pay.Public()}, 1, []string{"payments/*"}); err != nil {
		t.Fatal(err)
	}
	bill := f.teamKey("billing")
	if err := f.repo.AddTeam("billing", []crypto.PublicKey{bill.Public()}, 1, []string{"billing/app:*"}); err != nil {
		t.Fatal(err)
	}
	app := f.release("payments", "payments/app", "1.2", pay)
	other := f.release("billing", "billing/app", "7", bill)
	top := f.release("", "platform/base", "1", nil)
	ix := f.refresh(f.client(""))

	for _, want := range []*Target{app, other, top} {
		got, err := ix.Verify(want.Repository, want.Tag, want.Digest, now())
		if err != nil {
			t.Fatalf("%s: %v", want.Path(), err)
		}
		if got.Digest != want.Digest || got.Provenance != want.Provenance || got.Role != want.Role {
			t.Errorf("%s: got %+v, want %+v", want.Path(), got, want)
		}
		if err := VerifyProvenance(got, want.Provenance); err != nil {
			t.Error(err)
		}
		// By digest: some tag of the repository names it.
		if got, err := ix.Verify(want.Repository, "", want.Digest, now()); err != nil || got.Tag != want.Tag {
			t.Errorf("%s by digest: %+v %v", want.Path(), got, err)
		}
	}
	tests := []struct {
		name, repo, tag, digest, check string
	}{
		{"another digest for the tag", "payments/app", "1.2", other.Digest, CheckNotListed},
		{"an unreleased tag", "payments/app", "9.9", app.Digest, CheckNotListed},
		{"a path no team owns", "nobody/app", "1", app.Digest, CheckNotListed},
		{"a digest under no tag", "payments/app", "", other.Digest, CheckNotListed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ix.Verify(tc.repo, tc.tag, tc.digest, now())
			wantCheck(t, err, tc.check)
		})
	}
	wantCheck(t, VerifyProvenance(app, other.Provenance), CheckProvenance)
	if n := len(ix.Targets(now())); n != 3 {
		t.Errorf("Targets lists %d releases, want 3", n)
	}
	// Moving a tag is a new release; readers see the new digest.
	moved := f.release("payments", "payments/app", "1.2", pay)
	ix = f.refresh(f.client(""))
	if _, err := ix.Verify("payments/app", "1.2", moved.Digest, now()); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, func() error { _, err := ix.Verify("payments/app", "1.2", app.Digest, now()); return err }(), CheckNotListed)
}

func TestTeamCannotReleaseOthersPaths(t *testing.T) {
	f := newFixture(t)
	pay, bill := f.teamKey("payments"), f.teamKey("billing")
	for team, k := range map[string]*Key{"payments": pay, "billing": bill} {
		if err := f.repo.AddTeam(team, []crypto.PublicKey{k.Public()}, 1, []string{team + "/*"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.repo.Release("payments", fakeTarget("billing/app", "1"), []*Key{pay})
	wantCheck(t, err, CheckDelegation)
	// Another team's key does not reach the team's threshold.
	_, err = f.repo.Release("payments", fakeTarget("payments/app", "1"), []*Key{bill})
	wantCheck(t, err, CheckThreshold)
	if v := f.repo.Version(); v != 3 {
		t.Errorf("refused releases changed the index: version %d", v)
	}
}

// TestRoleListingOutsideItsDelegation: a team's key signs a role that lists
// another team's path; readers refuse that release and name the role.
func TestRoleListingOutsideItsDelegation(t *testing.T) {
	f := newFixture(t)
	pay, bill := f.teamKey("payments"), f.teamKey("billing")
	f.repo.AddTeam("payments", []crypto.PublicKey{pay.Public()}, 1, []string{"payments/*"})
	f.repo.AddTeam("billing", []crypto.PublicKey{bill.Public()}, 1, []string{"billing/*"})
	real := f.release("billing", "billing/app", "1", bill)
	f.release("payments", "payments/app", "1", pay)
	// Forge: payments lists billing/app:1 with its own digest.
	forged, _ := targetFile(ptr(fakeTarget("billing/app", "1")))
	f.repo.teams["payments"].Signed.Targets["billing/app:1"] = forged
	if err := f.repo.commit(nil, map[string][]*Key{"payments": {pay}}); err != nil {
		t.Fatal(err)
	}
	ix := f.refresh(f.client(""))
	_, err := ix.Verify("billing/app", "1", real.Digest, now())
	re := wantCheck(t, err, CheckDelegation)
	if re.Role != "payments" || !strings.Contains(err.Error(), "billing/app:1") {
		t.Errorf("the refusal does not name the role and path: %v", err)
	}
	// payments' own releases still verify.
	if _, err := ix.Lookup("payments/app", "1", now()); err != nil {
		t.Error(err)
	}
	if p := ix.Problems(); len(p) != 1 || p[0].Role != "payments" {
		t.Errorf("Problems = %+v", p)
	}
}

func TestExpiredTimestamp(t *testing.T) {
	f := newFixture(t, WithClock(func() time.Time { return time.Now().Add(-49 * time.Hour) }))
	_, err := f.client("").Refresh(context.Background())
	re := wantCheck(t, err, CheckExpired)
	if re.Role != metadata.TIMESTAMP {
		t.Errorf("role %q, want timestamp: %v", re.Role, err)
	}
	// An index that verified goes stale in memory too.
	g := newFixture(t, WithExpiries(Expiries{Timestamp: time.Hour}))
	ix := g.refresh(g.client(""))
	_, err = ix.Lookup("x/y", "1", time.Now().Add(2*time.Hour))
	wantCheck(t, err, CheckExpired)
}

func TestTeamSignedBelowThreshold(t *testing.T) {
	f := newFixture(t)
	a, b := f.teamKey("a"), f.teamKey("b")
	if err := f.repo.AddTeam("payments", []crypto.PublicKey{a.Public(), b.Public()}, 2, []string{"payments/*"}); err != nil {
		t.Fatal(err)
	}
	// The repository refuses to sign below the threshold...
	_, err := f.repo.Release("payments", fakeTarget("payments/app", "1"), []*Key{a})
	wantCheck(t, err, CheckThreshold)
	good := f.release("payments", "payments/app", "1", a, b)
	// ...and readers refuse a role that someone with one key signed.
	md := f.repo.teams["payments"]
	tf, _ := targetFile(ptr(fakeTarget("payments/app", "2")))
	md.Signed.Targets["payments/app:2"] = tf
	md.Signed.Version++
	md.ClearSignatures()
	md.Sign(a.signer)
	data, _ := md.ToBytes(true)
	writeAtomic(f.repo.metaPath("3.payments.json"), data)
	f.repo.raw["payments"] = data
	f.repo.teams["payments"].Signed.Version = 3
	if err := f.repo.commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	ix := f.refresh(f.client(""))
	_, err = ix.Verify("payments/app", "1", good.Digest, now())
	re := wantCheck(t, err, CheckThreshold)
	if re.Role != "payments" {
		t.Errorf("role %q: %v", re.Role, err)
	}
}

func TestTopLevelTargetsBelowThreshold(t *testing.T) {
	f := newFixture(t)
	second, _ := GenerateKey(filepath.Join(f.dir, "targets2.pem"))
	// Root now requires two targets signatures; the repository holds one key.
	err := f.repo.RotateRoot(RootChange{Add: map[string][]crypto.PublicKey{metadata.TARGETS: {second.Public()}}, Thresholds: map[string]int{metadata.TARGETS: 2}}, f.rootKeys[:2])
	wantCheck(t, err, CheckThreshold)
	// Forged the hard way: a root that needs two, a targets with one.
	next, _ := metadata.Root().FromBytes(mustRead(t, f.repo.metaPath("root.json")))
	k, _ := metadata.KeyFromPublicKey(second.Public())
	next.Signed.AddKey(k, metadata.TARGETS)
	next.Signed.Roles[metadata.TARGETS].Threshold = 2
	next.Signed.Version = 2
	if err := signRoot(next, f.repo.root, f.rootKeys[:2]); err != nil {
		t.Fatal(err)
	}
	f.repo.root = next
	if err := f.repo.writeRoot(); err != nil {
		t.Fatal(err)
	}
	// Sign targets with one key and publish it, bypassing the check.
	f.repo.targets.Signed.Version++
	f.repo.targets.ClearSignatures()
	f.repo.targets.Sign(f.repo.o.keys[metadata.TARGETS].signer)
	data, _ := f.repo.targets.ToBytes(true)
	writeAtomic(f.repo.metaPath(fmt.Sprintf("%d.targets.json", f.repo.targets.Signed.Version)), data)
	f.repo.raw[metadata.TARGETS] = data
	if err := f.repo.commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err = f.client("").Refresh(context.Background())
	re := wantCheck(t, err, CheckThreshold)
	if re.Role != metadata.TARGETS {
		t.Errorf("role %q: %v", re.Role, err)
	}
}

// TestRollbackPerRegion: a reader that saw a newer index refuses an older
// one, validly signed and unexpired; a reader with a fresh state for
// another region does not know better.
func TestRollbackPerRegion(t *testing.T) {
	f := newFixture(t)
	pay := f.teamKey("payments")
	f.repo.AddTeam("payments", []crypto.PublicKey{pay.Public()}, 1, []string{"payments/*"})
	vulnerable := f.release("payments", "payments/app", "1.2", pay)
	old := copyDir(t, f.serveDir)
	fixed := f.release("payments", "payments/app", "1.2", pay)

	state := t.TempDir()
	c := f.client(state)
	ix := f.refresh(c)
	if _, err := ix.Verify("payments/app", "1.2", fixed.Digest, now()); err != nil {
		t.Fatal(err)
	}
	// The region now serves the old index.
	f.serveDir = old
	_, err := c.Refresh(context.Background())
	wantCheck(t, err, CheckRollback)
	if c.Current() != ix {
		t.Error("a refused refresh replaced the trusted index")
	}
	// A new client with the same state dir (the next run) refuses too.
	_, err = f.client(state).Refresh(context.Background())
	wantCheck(t, err, CheckRollback)
	// A reader that never saw the newer index takes the old one: the
	// state is per region, and so is the protection.
	ix, err = f.client("").Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Verify("payments/app", "1.2", vulnerable.Digest, now()); err != nil {
		t.Fatal(err)
	}
}

func TestRootRotation(t *testing.T) {
	f := newFixture(t)
	state := t.TempDir()
	f.refresh(f.client(state))
	k4, _ := GenerateKey(filepath.Join(f.dir, "offline", "root4.pem"))
	// Replace root1 with root4: signed by two current keys and two of the
	// new root's.
	change := RootChange{Add: map[string][]crypto.PublicKey{metadata.ROOT: {k4.Public()}}, Remove: map[string][]string{metadata.ROOT: {f.rootKeys[0].ID()}}}
	if err := f.repo.RotateRoot(change, []*Key{f.rootKeys[0]}); err == nil {
		t.Fatal("a root signed by one key was accepted")
	}
	if err := f.repo.RotateRoot(change, []*Key{f.rootKeys[1], f.rootKeys[2]}); err != nil {
		t.Fatal(err)
	}
	// Readers starting from version 1 (and those that trusted it) follow.
	for _, c := range []*Client{f.client(state), f.client("")} {
		if ix := f.refresh(c); ix.RootVersion != 2 {
			t.Errorf("root version %d, want 2", ix.RootVersion)
		}
	}
	// The removed key no longer counts: a root 3 signed by root1 and root4
	// lacks the threshold of root 2's keys (root2, root3, root4).
	next, _ := metadata.Root().FromBytes(mustRead(t, f.repo.metaPath("root.json")))
	next.Signed.Version = 3
	next.ClearSignatures()
	next.Sign(f.rootKeys[0].signer)
	next.Sign(k4.signer)
	data, _ := next.ToBytes(true)
	writeAtomic(f.repo.metaPath("3.root.json"), data)
	_, err := f.client(state).Refresh(context.Background())
	re := wantCheck(t, err, CheckThreshold)
	if re.Role != metadata.ROOT {
		t.Errorf("role %q: %v", re.Role, err)
	}
}

func TestRevokeTeamKey(t *testing.T) {
	f := newFixture(t)
	old, fresh := f.teamKey("old"), f.teamKey("new")
	f.repo.AddTeam("payments", []crypto.PublicKey{old.Public()}, 1, []string{"payments/*"})
	app := f.release("payments", "payments/app", "1", old)
	if err := f.repo.RevokeTeamKey("payments", "nonsense"); err == nil {
		t.Error("revoking a key the team does not have succeeded")
	}
	if err := f.repo.RevokeTeamKey("payments", old.ID()); err != nil {
		t.Fatal(err)
	}
	// What the revoked key signed no longer verifies.
	_, err := f.refresh(f.client("")).Verify("payments/app", "1", app.Digest, now())
	wantCheck(t, err, CheckThreshold)
	// Nor can it sign anything new.
	_, err = f.repo.Release("payments", fakeTarget("payments/app", "2"), []*Key{old})
	wantCheck(t, err, CheckThreshold)
	// The team's new key re-signs its releases.
	if err := f.repo.AddTeamKey("payments", fresh.Public()); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SignTeam("payments", []*Key{fresh}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.refresh(f.client("")).Verify("payments/app", "1", app.Digest, now()); err != nil {
		t.Fatal(err)
	}
	// Reopened from disk, the repository is the same.
	r, err := Open(f.repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if teams := r.Teams(); len(teams) != 1 || len(teams[0].KeyIDs) != 1 || teams[0].KeyIDs[0] != fresh.ID() {
		t.Errorf("teams after reopening: %+v", teams)
	}
}

func TestInitRefusals(t *testing.T) {
	dir := t.TempDir()
	k, _ := GenerateKey(filepath.Join(dir, "k.pem"))
	for _, cfg := range []InitConfig{{}, {RootKeys: []*Key{k}, RootThreshold: 2}, {RootKeys: []*Key{k}}} {
		if _, err := Init(filepath.Join(dir, "r"), cfg); err == nil {
			t.Errorf("Init(%+v) succeeded", cfg)
		}
	}
	if _, err := Init(filepath.Join(dir, "r"), InitConfig{RootKeys: []*Key{k}, RootThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(filepath.Join(dir, "r"), InitConfig{RootKeys: []*Key{k}, RootThreshold: 1}); err == nil {
		t.Error("Init over an existing index succeeded")
	}
	if _, err := GenerateKey(filepath.Join(dir, "k.pem")); err == nil {
		t.Error("GenerateKey overwrote a key")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "r", KeysDir, "timestamp.pem")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("online key mode: %v", fi)
	}
}

func ptr[T any](v T) *T { return &v }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
