package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
	"github.com/twinforge/twinforge/internal/textout"
)

// releaseOptions are the flags of the release subcommands; each run of
// one uses those it declares.
type releaseOptions struct {
	repo, output                    string
	expiries                        release.Expiries
	registry                        distribute.RegistrySettings
	reader                          release.ReaderSettings
	init                            release.InitKeyFiles
	rootKeys, keys, paths           cli.StringSlice
	addKeys, removeKeys, thresholds cli.StringSlice
	threshold                       int
	team, tag, provenance           string
}

func releaseCommand() *cli.Command {
	o := &releaseOptions{}
	repoFlag := &cli.StringFlag{Name: "repo", Value: "release-repo", Usage: "the release index `DIR` (release init made it)", EnvVars: []string{"TWINFORGE_RELEASE_DIR"}, Destination: &o.repo}
	return &cli.Command{
		Name:        "release",
		Usage:       "keep the TUF release index: which digest each released tag names, signed per team",
		Description: helpText("release"),
		Subcommands: []*cli.Command{
			{
				Name: "keygen", Usage: "make an Ed25519 key pair for a release role", ArgsUsage: "FILE",
				Description: "Writes FILE (PKCS #8 PEM, mode 0600) and FILE.pub. An existing file is never overwritten.",
				Action:      o.keygen,
			},
			{
				Name: "init", Usage: "create a release index", ArgsUsage: "DIR",
				Description: helpText("release-init"),
				Flags: append([]cli.Flag{
					&cli.StringSliceFlag{Name: "root-keys", Usage: "root private key `FILES`, comma-separated", Required: true, Destination: &o.rootKeys},
					&cli.IntFlag{Name: "threshold", Value: 1, Usage: "root signatures every new root needs", Destination: &o.init.RootThreshold},
					&cli.StringFlag{Name: "targets-key", Usage: "targets private key `FILE` (default: generated in DIR/keys)", Destination: &o.init.TargetsKey},
					&cli.StringFlag{Name: "snapshot-key", Usage: "snapshot private key `FILE` (default: generated in DIR/keys)", Destination: &o.init.SnapshotKey},
					&cli.StringFlag{Name: "timestamp-key", Usage: "timestamp private key `FILE` (default: generated in DIR/keys)", Destination: &o.init.TimestampKey},
				}, o.expiryFlags()...),
				Action: o.initIndex,
			},
			{
				Name:  "team",
				Usage: "delegate image paths to teams and manage their keys",
				Subcommands: []*cli.Command{
					{
						Name: "add", Usage: "delegate paths to a new team", ArgsUsage: "TEAM",
						Description: helpText("release-team-add"),
						Flags: []cli.Flag{repoFlag,
							&cli.StringSliceFlag{Name: "key", Usage: "the team's public (or private) key `FILES`", Required: true, Destination: &o.keys},
							&cli.IntFlag{Name: "threshold", Value: 1, Usage: "team signatures every release needs", Destination: &o.threshold},
							&cli.StringSliceFlag{Name: "paths", Usage: "REPOSITORY:TAG `PATTERNS` the team releases", Required: true, Destination: &o.paths},
						},
						Action: o.teamAdd,
					},
					{
						Name: "add-key", Usage: "give a team another key", ArgsUsage: "TEAM KEYFILE",
						Flags: []cli.Flag{repoFlag}, Action: o.teamAddKey,
					},
					{
						Name: "revoke-key", Usage: "take a key away from a team", ArgsUsage: "TEAM KEYID|KEYFILE",
						Description: helpText("release-team-revoke-key"),
						Flags:       []cli.Flag{repoFlag}, Action: o.teamRevokeKey,
					},
					{
						Name: "sign", Usage: "sign a team's releases again (after a key rotation)", ArgsUsage: "TEAM",
						Flags:  []cli.Flag{repoFlag, &cli.StringSliceFlag{Name: "key", Usage: "the team's private key `FILES`", Required: true, Destination: &o.keys}},
						Action: o.teamSign,
					},
				},
			},
			{
				Name: "add", Usage: "release an image: TAG of its repository names its digest", ArgsUsage: "REGISTRY/REPOSITORY@sha256:...",
				Description: helpText("release-add"),
				Flags: append([]cli.Flag{repoFlag,
					&cli.StringFlag{Name: "team", Usage: "the team releasing (empty: the top-level targets role, with the targets key)", Destination: &o.team},
					&cli.StringFlag{Name: "tag", Usage: "the tag released", Required: true, Destination: &o.tag},
					&cli.StringSliceFlag{Name: "key", Usage: "the team's private key `FILES`", Destination: &o.keys},
					&cli.StringFlag{Name: "provenance", Usage: "sha256 of the provenance statement (default: read from the image's referrers)", Destination: &o.provenance},
					outputFlag(&o.output, "text or json"),
				}, registryFlags(&o.registry)...),
				Action: o.add,
			},
			{
				Name: "rotate-root", Usage: "write a new root: add or remove role keys, change thresholds",
				Description: helpText("release-rotate-root"),
				Flags: append([]cli.Flag{repoFlag,
					&cli.StringSliceFlag{Name: "root-keys", Usage: "root private key `FILES` signing the new root", Required: true, Destination: &o.rootKeys},
					&cli.StringSliceFlag{Name: "add-key", Usage: "`ROLE=FILE` (repeatable)", Destination: &o.addKeys},
					&cli.StringSliceFlag{Name: "remove-key", Usage: "`ROLE=KEYID` (repeatable)", Destination: &o.removeKeys},
					&cli.StringSliceFlag{Name: "threshold", Usage: "`ROLE=N` (repeatable)", Destination: &o.thresholds},
				}, o.expiryFlags()...),
				Action: o.rotateRoot,
			},
			{
				Name: "refresh", Usage: "sign snapshot and timestamp again with fresh expiries",
				Description: "Run it more often than the timestamp expiry (a day by default), or readers refuse the index as stale.",
				Flags:       append([]cli.Flag{repoFlag}, o.expiryFlags()...),
				Action: func(c *cli.Context) error {
					return o.onRepo(c, (*release.Repository).Refresh, (*release.Repository).Refreshed)
				},
			},
			{
				Name: "push", Usage: "push the index as an OCI artifact", ArgsUsage: "REGISTRY/REPOSITORY[:TAG]",
				Flags:  append([]cli.Flag{repoFlag}, registryFlags(&o.registry)...),
				Action: o.push,
			},
			{
				Name: "list", Usage: "read an index as readers do, verified, and list its releases",
				Flags:  slices.Concat([]cli.Flag{outputFlag(&o.output, "text or json")}, readerFlags(&o.reader, true), registryFlags(&o.registry)),
				Action: o.list,
			},
		},
	}
}

func (o *releaseOptions) expiryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "timestamp-expiry", Usage: "how long a signed timestamp stays valid (default 24h)", Destination: &o.expiries.Timestamp},
		&cli.DurationFlag{Name: "snapshot-expiry", Usage: "how long a signed snapshot stays valid (default 168h)", Destination: &o.expiries.Snapshot},
	}
}

// readerFlags set where verify, replicate, release list and admission
// find a release index.
func readerFlags(r *release.ReaderSettings, required bool) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "release-repo", Usage: "the release index: `URL` of its metadata (https://...), or oci://REGISTRY/REPOSITORY[:TAG]", Required: required, Destination: &r.URL},
		&cli.StringFlag{Name: "release-root", Usage: "the index's root.json `FILE`, trusted first (needed the first time a region is read)", Destination: &r.RootFile},
		&cli.StringFlag{Name: "release-state", Usage: "`DIR` keeping what this reader trusted of the index, per region (default: the user cache directory)", Destination: &r.StateDir},
	}
}

// openReader checks the registry settings reg and the reader's: the
// registry options, and the index's configuration (nil without
// --release-repo).
func openReader(r release.ReaderSettings, reg distribute.RegistrySettings) ([]distribute.Option, *release.ClientConfig, error) {
	registry, err := reg.Options()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := r.Config(registry)
	return registry, cfg, err
}

// releaseError gives the release index's refusals exit code 4.
func releaseError(err error) error {
	if release.IsRefusal(err) {
		return refused(err)
	}
	return err
}

func (o *releaseOptions) open(extra ...release.Option) (*release.Repository, error) {
	return release.Open(o.repo, append([]release.Option{release.WithExpiries(o.expiries)}, extra...)...)
}

// onRepo opens --repo (with extra options), runs op on it and prints what
// done says; op's refusals exit 4.
func (o *releaseOptions) onRepo(c *cli.Context, op func(*release.Repository) error, done func(*release.Repository) string, extra ...release.Option) error {
	r, err := o.open(extra...)
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
	return nArgs(c, n, "%s takes %s", commandName(c), usage)
}

func (o *releaseOptions) keygen(c *cli.Context) error {
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

func (o *releaseOptions) initIndex(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one DIR"); err != nil {
		return err
	}
	o.init.RootKeys = o.rootKeys.Value()
	cfg, err := o.init.Config(func(k *release.Key) { fmt.Fprintln(c.App.Writer, k.GeneratedRoot()) })
	if err != nil {
		return err
	}
	r, err := release.Init(c.Args().First(), cfg, release.WithExpiries(o.expiries))
	if err != nil {
		return releaseError(err)
	}
	fmt.Fprintln(c.App.Writer, r.Initialised(cfg))
	return nil
}

func (o *releaseOptions) teamAdd(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one TEAM"); err != nil {
		return err
	}
	pubs, err := release.LoadPublicKeys("key", o.keys.Value())
	if err != nil {
		return err
	}
	team, paths := c.Args().First(), o.paths.Value()
	return o.onRepo(c, func(r *release.Repository) error { return r.AddTeam(team, pubs, o.threshold, paths) },
		func(r *release.Repository) string { return r.TeamAdded(team, paths, o.threshold, len(pubs)) })
}

func (o *releaseOptions) teamAddKey(c *cli.Context) error {
	if err := releaseArgs(c, 2, "TEAM and KEYFILE"); err != nil {
		return err
	}
	pub, err := release.LoadPublicKey(c.Args().Get(1))
	if err != nil {
		return usageError(err)
	}
	id, _ := release.KeyID(pub)
	team := c.Args().First()
	return o.onRepo(c, func(r *release.Repository) error { return r.AddTeamKey(team, pub) },
		func(r *release.Repository) string { return r.TeamKeyAdded(team, id) })
}

func (o *releaseOptions) teamRevokeKey(c *cli.Context) error {
	if err := releaseArgs(c, 2, "TEAM and KEYID or KEYFILE"); err != nil {
		return err
	}
	team, id := c.Args().First(), c.Args().Get(1)
	if pub, err := release.LoadPublicKey(id); err == nil {
		id, _ = release.KeyID(pub)
	}
	return o.onRepo(c, func(r *release.Repository) error { return r.RevokeTeamKey(team, id) },
		func(r *release.Repository) string { return r.TeamKeyRevoked(team, id) })
}

func (o *releaseOptions) teamSign(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one TEAM"); err != nil {
		return err
	}
	keys, err := release.LoadKeys("key", o.keys.Value())
	if err != nil {
		return err
	}
	team := c.Args().First()
	return o.onRepo(c, func(r *release.Repository) error { return r.SignTeam(team, keys) },
		func(r *release.Repository) string { return r.TeamSigned(team) })
}

func (o *releaseOptions) add(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one REGISTRY/REPOSITORY@sha256:..."); err != nil {
		return err
	}
	ref, err := name.NewDigest(c.Args().First(), name.StrictValidation)
	if err != nil {
		return usageErrorf("%q: %v: release an image by digest", c.Args().First(), err)
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	registry, err := o.registry.Options()
	if err != nil {
		return err
	}
	keys, err := release.LoadKeys("key", o.keys.Value())
	if err != nil {
		return err
	}
	if o.team != "" && len(keys) == 0 {
		return usageErrorf("--team %s signs with the team's keys: give --key", o.team)
	}
	r, err := o.open()
	if err != nil {
		return err
	}
	done, err := r.ReleaseImage(c.Context, o.team, ref, o.tag, o.provenance, keys, registry...)
	if err != nil {
		return releaseError(err)
	}
	if o.output == "json" {
		return textout.JSON(c.App.Writer, done)
	}
	fmt.Fprintln(c.App.Writer, r.Released(done))
	return nil
}

func (o *releaseOptions) rotateRoot(c *cli.Context) error {
	plan, err := release.RootRotation{
		RootKeys: o.rootKeys.Value(), AddKeys: o.addKeys.Value(), RemoveKeys: o.removeKeys.Value(), Thresholds: o.thresholds.Value(),
	}.Plan()
	if err != nil {
		return err
	}
	return o.onRepo(c, plan.Apply, (*release.Repository).RootRotated, plan.Options...)
}

func (o *releaseOptions) push(c *cli.Context) error {
	if err := releaseArgs(c, 1, "one REGISTRY/REPOSITORY[:TAG]"); err != nil {
		return err
	}
	ref, err := name.NewTag(c.Args().First(), name.WithDefaultTag(release.IndexTag))
	if err != nil {
		return usageErrorf("%q: %v", c.Args().First(), err)
	}
	registry, err := o.registry.Options()
	if err != nil {
		return err
	}
	r, err := o.open()
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

func (o *releaseOptions) list(c *cli.Context) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	_, cfg, err := openReader(o.reader, o.registry)
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
	return writeOutput(c.App.Writer, o.output, ix.Listing(time.Now()))
}
