package main

import (
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

func releaseCommand() *cli.Command {
	repoFlag := &cli.StringFlag{Name: "repo", Value: "release-repo", Usage: "the release index `DIR` (release init made it)", EnvVars: []string{"TWINFORGE_RELEASE_DIR"}}
	return &cli.Command{
		Name:        "release",
		Usage:       "keep the TUF release index: which digest each released tag names, signed per team",
		Description: helpText("release"),
		Subcommands: []*cli.Command{
			{
				Name: "keygen", Usage: "make an Ed25519 key pair for a release role", ArgsUsage: "FILE",
				Description: "Writes FILE (PKCS #8 PEM, mode 0600) and FILE.pub. An existing file is never overwritten.",
				Action:      runReleaseKeygen,
			},
			{
				Name: "init", Usage: "create a release index", ArgsUsage: "DIR",
				Description: helpText("release-init"),
				Flags: append([]cli.Flag{
					&cli.StringSliceFlag{Name: "root-keys", Usage: "root private key `FILES`, comma-separated", Required: true},
					&cli.IntFlag{Name: "threshold", Value: 1, Usage: "root signatures every new root needs"},
					&cli.StringFlag{Name: "targets-key", Usage: "targets private key `FILE` (default: generated in DIR/keys)"},
					&cli.StringFlag{Name: "snapshot-key", Usage: "snapshot private key `FILE` (default: generated in DIR/keys)"},
					&cli.StringFlag{Name: "timestamp-key", Usage: "timestamp private key `FILE` (default: generated in DIR/keys)"},
				}, expiryFlags()...),
				Action: runReleaseInit,
			},
			{
				Name:  "team",
				Usage: "delegate image paths to teams and manage their keys",
				Subcommands: []*cli.Command{
					{
						Name: "add", Usage: "delegate paths to a new team", ArgsUsage: "TEAM",
						Description: helpText("release-team-add"),
						Flags: []cli.Flag{repoFlag,
							&cli.StringSliceFlag{Name: "key", Usage: "the team's public (or private) key `FILES`", Required: true},
							&cli.IntFlag{Name: "threshold", Value: 1, Usage: "team signatures every release needs"},
							&cli.StringSliceFlag{Name: "paths", Usage: "REPOSITORY:TAG `PATTERNS` the team releases", Required: true},
						},
						Action: runReleaseTeamAdd,
					},
					{
						Name: "add-key", Usage: "give a team another key", ArgsUsage: "TEAM KEYFILE",
						Flags: []cli.Flag{repoFlag}, Action: runReleaseTeamAddKey,
					},
					{
						Name: "revoke-key", Usage: "take a key away from a team", ArgsUsage: "TEAM KEYID|KEYFILE",
						Description: helpText("release-team-revoke-key"),
						Flags:       []cli.Flag{repoFlag}, Action: runReleaseTeamRevoke,
					},
					{
						Name: "sign", Usage: "sign a team's releases again (after a key rotation)", ArgsUsage: "TEAM",
						Flags:  []cli.Flag{repoFlag, &cli.StringSliceFlag{Name: "key", Usage: "the team's private key `FILES`", Required: true}},
						Action: runReleaseTeamSign,
					},
				},
			},
			{
				Name: "add", Usage: "release an image: TAG of its repository names its digest", ArgsUsage: "REGISTRY/REPOSITORY@sha256:...",
				Description: helpText("release-add"),
				Flags: append([]cli.Flag{repoFlag,
					&cli.StringFlag{Name: "team", Usage: "the team releasing (empty: the top-level targets role, with the targets key)"},
					&cli.StringFlag{Name: "tag", Usage: "the tag released", Required: true},
					&cli.StringSliceFlag{Name: "key", Usage: "the team's private key `FILES`"},
					&cli.StringFlag{Name: "provenance", Usage: "sha256 of the provenance statement (default: read from the image's referrers)"},
					outputFlag("text or json"),
				}, registryFlags()...),
				Action: runReleaseAdd,
			},
			{
				Name: "rotate-root", Usage: "write a new root: add or remove role keys, change thresholds",
				Description: helpText("release-rotate-root"),
				Flags: append([]cli.Flag{repoFlag,
					&cli.StringSliceFlag{Name: "root-keys", Usage: "root private key `FILES` signing the new root", Required: true},
					&cli.StringSliceFlag{Name: "add-key", Usage: "`ROLE=FILE` (repeatable)"},
					&cli.StringSliceFlag{Name: "remove-key", Usage: "`ROLE=KEYID` (repeatable)"},
					&cli.StringSliceFlag{Name: "threshold", Usage: "`ROLE=N` (repeatable)"},
				}, expiryFlags()...),
				Action: runReleaseRotateRoot,
			},
			{
				Name: "refresh", Usage: "sign snapshot and timestamp again with fresh expiries",
				Description: "Run it more often than the timestamp expiry (a day by default), or readers refuse the index as stale.",
				Flags:       append([]cli.Flag{repoFlag}, expiryFlags()...), Action: runReleaseRefresh,
			},
			{
				Name: "push", Usage: "push the index as an OCI artifact", ArgsUsage: "REGISTRY/REPOSITORY[:TAG]",
				Flags:  append([]cli.Flag{repoFlag}, registryFlags()...),
				Action: runReleasePush,
			},
			{
				Name: "list", Usage: "read an index as readers do, verified, and list its releases",
				Flags: append(append([]cli.Flag{outputFlag("text or json")},
					releaseReaderFlags(true)...), registryFlags()...),
				Action: runReleaseList,
			},
		},
	}
}

func expiryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "timestamp-expiry", Usage: "how long a signed timestamp stays valid (default 24h)"},
		&cli.DurationFlag{Name: "snapshot-expiry", Usage: "how long a signed snapshot stays valid (default 168h)"},
	}
}

// releaseReaderFlags are how verify, replicate and admission find an index.
func releaseReaderFlags(required bool) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "release-repo", Usage: "the release index: `URL` of its metadata (https://...), or oci://REGISTRY/REPOSITORY[:TAG]", Required: required},
		&cli.StringFlag{Name: "release-root", Usage: "the index's root.json `FILE`, trusted first (needed the first time a region is read)"},
		&cli.StringFlag{Name: "release-state", Usage: "`DIR` keeping what this reader trusted of the index, per region (default: the user cache directory)"},
	}
}

// releaseReaderFrom reads releaseReaderFlags; nil without --release-repo.
func releaseReaderFrom(c *cli.Context, registry []distribute.Option) (*release.ClientConfig, error) {
	url := c.String("release-repo")
	if url == "" {
		if c.IsSet("release-root") || c.IsSet("release-state") {
			return nil, usageErrorf("--release-root and --release-state go with --release-repo")
		}
		return nil, nil
	}
	cfg := &release.ClientConfig{URL: url, StateDir: c.String("release-state"), Registry: registry}
	if p := c.String("release-root"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, usageErrorf("--release-root: %w", err)
		}
		cfg.InitialRoot = data
	}
	return cfg, nil
}

// releaseError gives the release index's refusals exit code 4.
func releaseError(err error) error {
	if release.IsRefusal(err) {
		return refused(err)
	}
	return err
}

func repoOptions(c *cli.Context) []release.Option {
	return []release.Option{release.WithExpiries(release.Expiries{Timestamp: c.Duration("timestamp-expiry"), Snapshot: c.Duration("snapshot-expiry")})}
}

func openRepo(c *cli.Context, extra ...release.Option) (*release.Repository, error) {
	return release.Open(c.String("repo"), append(repoOptions(c), extra...)...)
}

// onRepo opens --repo (with extra options), runs op on it and prints what
// done says; op's refusals exit 4.
func onRepo(c *cli.Context, op func(*release.Repository) error, done func(*release.Repository) string, extra ...release.Option) error {
	r, err := openRepo(c, extra...)
	if err != nil {
		return err
	}
	if err := op(r); err != nil {
		return releaseError(err)
	}
	fmt.Fprintln(c.App.Writer, done(r))
	return nil
}

// releaseArgs checks that the command has n arguments; usage says which.
func releaseArgs(c *cli.Context, n int, usage string) error {
	if c.NArg() != n {
		return usageErrorf("%s takes %s", commandName(c), usage)
	}
	return nil
}

func runReleaseKeygen(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one FILE"); err != nil {
		return err
	}
	k, err := release.GenerateKey(c.Args().First())
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, k.Written())
	return nil
}

func runReleaseInit(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one DIR"); err != nil {
		return err
	}
	cfg, err := release.InitKeyFiles{
		RootKeys: c.StringSlice("root-keys"), RootThreshold: c.Int("threshold"),
		TargetsKey: c.String("targets-key"), SnapshotKey: c.String("snapshot-key"), TimestampKey: c.String("timestamp-key"),
	}.Config(func(k *release.Key) { fmt.Fprintln(c.App.Writer, k.GeneratedRoot()) })
	if err != nil {
		return usageError(err)
	}
	r, err := release.Init(c.Args().First(), cfg, repoOptions(c)...)
	if err != nil {
		return releaseError(err)
	}
	fmt.Fprintln(c.App.Writer, r.Initialised(cfg))
	return nil
}

func runReleaseTeamAdd(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one TEAM"); err != nil {
		return err
	}
	pubs, err := release.LoadPublicKeys("key", c.StringSlice("key"))
	if err != nil {
		return usageError(err)
	}
	team, paths, threshold := c.Args().First(), c.StringSlice("paths"), c.Int("threshold")
	return onRepo(c, func(r *release.Repository) error { return r.AddTeam(team, pubs, threshold, paths) },
		func(r *release.Repository) string { return r.TeamAdded(team, paths, threshold, len(pubs)) })
}

func runReleaseTeamAddKey(c *cli.Context) error {
	if err := releaseArgs(c, 2, "TEAM and KEYFILE"); err != nil {
		return err
	}
	pub, err := release.LoadPublicKey(c.Args().Get(1))
	if err != nil {
		return usageError(err)
	}
	id, _ := release.KeyID(pub)
	team := c.Args().First()
	return onRepo(c, func(r *release.Repository) error { return r.AddTeamKey(team, pub) },
		func(r *release.Repository) string { return r.TeamKeyAdded(team, id) })
}

func runReleaseTeamRevoke(c *cli.Context) error {
	if err := releaseArgs(c, 2, "TEAM and KEYID or KEYFILE"); err != nil {
		return err
	}
	team, id := c.Args().First(), c.Args().Get(1)
	if pub, err := release.LoadPublicKey(id); err == nil {
		id, _ = release.KeyID(pub)
	}
	return onRepo(c, func(r *release.Repository) error { return r.RevokeTeamKey(team, id) },
		func(r *release.Repository) string { return r.TeamKeyRevoked(team, id) })
}

func runReleaseTeamSign(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one TEAM"); err != nil {
		return err
	}
	keys, err := release.LoadKeys("key", c.StringSlice("key"))
	if err != nil {
		return usageError(err)
	}
	team := c.Args().First()
	return onRepo(c, func(r *release.Repository) error { return r.SignTeam(team, keys) },
		func(r *release.Repository) string { return r.TeamSigned(team) })
}

func runReleaseAdd(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one REGISTRY/REPOSITORY@sha256:..."); err != nil {
		return err
	}
	ref, err := name.NewDigest(c.Args().First(), name.StrictValidation)
	if err != nil {
		return usageErrorf("%q: %v: release an image by digest", c.Args().First(), err)
	}
	output, err := outputFrom(c)
	if err != nil {
		return err
	}
	registry, err := registryFrom(c)
	if err != nil {
		return err
	}
	keys, err := release.LoadKeys("key", c.StringSlice("key"))
	if err != nil {
		return usageError(err)
	}
	if c.String("team") != "" && len(keys) == 0 {
		return usageErrorf("--team %s signs with the team's keys: give --key", c.String("team"))
	}
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	done, err := r.ReleaseImage(c.Context, c.String("team"), ref, c.String("tag"), c.String("provenance"), keys, registry...)
	if err != nil {
		return releaseError(err)
	}
	if output == "json" {
		return writeJSON(c.App.Writer, done)
	}
	fmt.Fprintln(c.App.Writer, r.Released(done))
	return nil
}

func runReleaseRotateRoot(c *cli.Context) error {
	plan, err := release.RootRotation{
		RootKeys: c.StringSlice("root-keys"), AddKeys: c.StringSlice("add-key"),
		RemoveKeys: c.StringSlice("remove-key"), Thresholds: c.StringSlice("threshold"),
	}.Plan()
	if err != nil {
		return usageError(err)
	}
	return onRepo(c, plan.Apply, (*release.Repository).RootRotated, plan.Options...)
}

func runReleaseRefresh(c *cli.Context) error {
	return onRepo(c, (*release.Repository).Refresh, (*release.Repository).Refreshed)
}

func runReleasePush(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one REGISTRY/REPOSITORY[:TAG]"); err != nil {
		return err
	}
	ref, err := name.NewTag(c.Args().First(), name.WithDefaultTag(release.IndexTag))
	if err != nil {
		return usageErrorf("%q: %v", c.Args().First(), err)
	}
	registry, err := registryFrom(c)
	if err != nil {
		return err
	}
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	res, err := r.Push(c.Context, ref, registry...)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, r.Pushed(ref, res))
	return nil
}

func runReleaseList(c *cli.Context) error {
	output, err := outputFrom(c)
	if err != nil {
		return err
	}
	registry, err := registryFrom(c)
	if err != nil {
		return err
	}
	cfg, err := releaseReaderFrom(c, registry)
	if err != nil {
		return err
	}
	cl, err := release.NewClient(*cfg)
	if err != nil {
		return usageError(err)
	}
	ix, err := cl.Refresh(c.Context)
	if err != nil {
		return releaseError(err)
	}
	return writeOutput(c.App.Writer, output, ix.Listing(time.Now()))
}
