package gomod

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
)

// Defaults of Config.
const (
	// DefaultProxy is the module proxy unless Config.Proxy says otherwise.
	DefaultProxy = "https://proxy.golang.org"
	// DefaultSumDB is the Go checksum database's verifier key, as the go
	// command knows it.
	DefaultSumDB = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
)

// maxZipBytes bounds a module zip (the go command's limit).
const maxZipBytes = 500 << 20

var (
	// ErrChecksumMismatch is wrapped by the *MismatchError of a go.sum
	// line the checksum database contradicts.
	ErrChecksumMismatch = errors.New("go.sum contradicts the checksum database")
	// ErrVendorModified is wrapped by the *VendorError of a vendored
	// module whose files are not the module's.
	ErrVendorModified = errors.New("vendored module differs from the module")
	// ErrSumDB is wrapped by errors that mean the checksum database could
	// not be trusted: a record without a valid inclusion proof, a tree head
	// inconsistent with the one verified before, a bad signature.
	ErrSumDB = errors.New("checksum database verification failed")
)

// MismatchError names the module whose go.sum line the checksum database
// contradicts.
type MismatchError struct {
	Module Module
	// GoMod is true for the go.mod hash, false for the zip's.
	GoMod bool
	// GoSum is what go.sum says; SumDB what the database says.
	GoSum, SumDB string
}

func (e *MismatchError) Error() string {
	what := e.Module.String()
	if e.GoMod {
		what += "/go.mod"
	}
	return fmt.Sprintf("%s: %s lists %s %s, the checksum database has %s", e.Module.GoSum, ErrChecksumMismatch, what, e.GoSum, e.SumDB)
}

func (e *MismatchError) Unwrap() error { return ErrChecksumMismatch }

// VendorError names a vendored module and the file of it that is not the
// module's.
type VendorError struct {
	Module Module
	// File is relative to vendor/<module path>, slash-separated.
	File   string
	Reason string
}

func (e *VendorError) Error() string {
	return fmt.Sprintf("vendored module %s: vendor/%s/%s %s: %v", e.Module, e.Module.Path, e.File, e.Reason, ErrVendorModified)
}

func (e *VendorError) Unwrap() error { return ErrVendorModified }

// Config says where to check modules.
type Config struct {
	// Proxy is the module proxy's base URL; the checksum database is
	// reached through it at Proxy + "/sumdb/" + its name, and module zips
	// of vendored modules are downloaded from it. The default is
	// DefaultProxy.
	Proxy string
	// SumDB is the checksum database's verifier key (name+hash+key). The
	// default is DefaultSumDB.
	SumDB string
	// TreeHead is the signed tree head verified last time (Result.TreeHead,
	// kept in the lock): the database's tree must have grown from it,
	// which a consistency proof checks. Empty starts afresh.
	TreeHead string
	// NoSumDB lists module path prefix patterns (as GONOSUMDB) that are
	// not looked up: private modules. Their go.sum lines are reported in
	// Result.Skipped.
	NoSumDB []string
	// HTTPClient makes the requests. The default has a 2 minute timeout.
	HTTPClient *http.Client
	// Jobs bounds the lookups made at once. The default value is 8.
	Jobs int
}

// Result is what Verify proved.
type Result struct {
	// SumDB is the checksum database's name.
	SumDB string
	// TreeHead is the newest signed tree head the verified records are
	// included in (a signed note); TreeSize and TreeHash are its tree.
	TreeHead string
	TreeSize int64
	TreeHash string
	// Verified counts the go.sum lines proven, Vendored the vendored
	// modules compared file by file.
	Verified, Vendored int
	// Skipped are the modules matching Config.NoSumDB.
	Skipped []Module
}

// Verify proves each module's go.sum lines against the checksum database,
// and each vendored module's files (found in dir, the directory Scan read)
// against the module zip the proxy serves, whose hash must be the one the
// database proved. It returns the first refusal: a *MismatchError, a
// *VendorError, or an error wrapping ErrSumDB.
func Verify(ctx context.Context, dir string, mods []Module, cfg Config) (*Result, error) {
	v, err := newVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{SumDB: v.name}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.jobs)
	var mu sync.Mutex
	for _, m := range mods {
		if module.MatchPrefixPatterns(strings.Join(cfg.NoSumDB, ","), m.Path) {
			res.Skipped = append(res.Skipped, m)
			continue
		}
		g.Go(func() error {
			n, err := v.verifyModule(gctx, dir, m)
			mu.Lock()
			res.Verified += n
			if m.Vendored != "" && err == nil {
				res.Vendored++
			}
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := v.securityErr(); err != nil {
		return nil, err
	}
	res.TreeHead = string(v.ops.latestNote())
	if res.TreeHead != "" {
		tree, err := v.parseTree([]byte(res.TreeHead))
		if err != nil {
			return nil, fmt.Errorf("%w: the latest tree head: %v", ErrSumDB, err)
		}
		res.TreeSize, res.TreeHash = tree.N, tree.Hash.String()
	}
	return res, nil
}

type verifier struct {
	ctx      context.Context
	proxy    string
	name     string
	verifier note.Verifier
	client   *sumdb.Client
	ops      *clientOps
	http     *http.Client
	jobs     int
}

func newVerifier(ctx context.Context, cfg Config) (*verifier, error) {
	if cfg.Proxy == "" {
		cfg.Proxy = DefaultProxy
	}
	u, err := url.Parse(cfg.Proxy)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("module proxy %q: want an http(s) URL", cfg.Proxy)
	}
	if cfg.SumDB == "" {
		cfg.SumDB = DefaultSumDB
	}
	vk, err := note.NewVerifier(cfg.SumDB)
	if err != nil {
		return nil, fmt.Errorf("checksum database key %q: %w", cfg.SumDB, err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if cfg.Jobs < 1 {
		cfg.Jobs = 8
	}
	proxy := strings.TrimSuffix(cfg.Proxy, "/")
	ops := &clientOps{ctx: ctx, http: cfg.HTTPClient, base: proxy + "/sumdb/" + vk.Name(), key: []byte(cfg.SumDB), name: vk.Name(), latest: []byte(cfg.TreeHead), cache: map[string][]byte{}}
	v := &verifier{ctx: ctx, proxy: proxy, name: vk.Name(), verifier: vk, ops: ops, http: cfg.HTTPClient, jobs: cfg.Jobs}
	if cfg.TreeHead != "" {
		if _, err := v.parseTree([]byte(cfg.TreeHead)); err != nil {
			return nil, fmt.Errorf("%w: the tree head kept in the lock: %v", ErrSumDB, err)
		}
	}
	v.client = sumdb.NewClient(ops)
	return v, nil
}

func (v *verifier) parseTree(msg []byte) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(v.verifier))
	if err != nil {
		return tlog.Tree{}, err
	}
	return tlog.ParseTree([]byte(n.Text))
}

func (v *verifier) securityErr() error {
	if msg := v.ops.security(); msg != "" {
		return fmt.Errorf("%w: %s", ErrSumDB, msg)
	}
	return nil
}

// verifyModule checks one module's go.sum lines, and its vendored files.
func (v *verifier) verifyModule(ctx context.Context, dir string, m Module) (int, error) {
	n := 0
	for _, c := range []struct {
		vers, sum string
		goMod     bool
	}{{m.Version, m.Sum, false}, {m.Version + "/go.mod", m.GoModSum, true}} {
		if c.sum == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		lines, err := v.client.Lookup(m.Path, c.vers)
		if err != nil {
			if serr := v.securityErr(); serr != nil {
				return n, fmt.Errorf("%s: %w", m, serr)
			}
			if uerr := v.ops.unreachableErr(); uerr != nil {
				return n, fmt.Errorf("looking up %s in the checksum database: %w", m, uerr)
			}
			// Anything else the client refuses (an unknown module, a
			// record or tile that does not verify) means go.sum is not
			// proven: fail closed.
			return n, fmt.Errorf("%w: %v", ErrSumDB, err)
		}
		want := ""
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 3 && f[0] == m.Path && f[1] == c.vers {
				want = f[2]
			}
		}
		if want != c.sum {
			return n, &MismatchError{Module: m, GoMod: c.goMod, GoSum: c.sum, SumDB: want}
		}
		n++
	}
	if m.Vendored != "" {
		if err := v.verifyVendored(ctx, dir, m); err != nil {
			return n, err
		}
	}
	return n, nil
}

// verifyVendored compares a vendored module's files with the module zip,
// whose hash must be go.sum's (which the database just proved).
func (v *verifier) verifyVendored(ctx context.Context, dir string, m Module) error {
	esc, err := module.EscapePath(m.Path)
	if err != nil {
		return err
	}
	ever, err := module.EscapeVersion(m.Version)
	if err != nil {
		return err
	}
	zipURL := v.proxy + "/" + esc + "/@v/" + ever + ".zip"
	data, err := v.get(ctx, zipURL, maxZipBytes)
	if err != nil {
		return fmt.Errorf("downloading %s to compare with its vendored copy: %w", m, err)
	}
	tmp, err := os.CreateTemp("", "twinforge-gomod-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	h, err := dirhash.HashZip(tmp.Name(), dirhash.Hash1)
	if err != nil {
		return fmt.Errorf("hashing the zip of %s: %w", m, err)
	}
	if h != m.Sum {
		return fmt.Errorf("%w: the proxy served a zip of %s with hash %s, not %s", ErrSumDB, m, h, m.Sum)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("reading the zip of %s: %w", m, err)
	}
	prefix := m.Path + "@" + m.Version + "/"
	inZip := map[string]*zip.File{}
	for _, f := range zr.File {
		if rel, ok := strings.CutPrefix(f.Name, prefix); ok {
			inZip[rel] = f
		}
	}
	modDir := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(strings.TrimSuffix(m.GoSum, "go.sum"), "/")))
	vendored, err := readModulesTxt(modDir)
	if err != nil {
		return err
	}
	var paths []string
	for _, mv := range vendored {
		paths = append(paths, mv.Path)
	}
	files, err := VendoredFiles(modDir, m.Path, paths)
	if err != nil {
		return err
	}
	root := filepath.Join(modDir, "vendor", filepath.FromSlash(m.Path))
	for _, rel := range files {
		zf, ok := inZip[rel]
		if !ok {
			return &VendorError{Module: m, File: rel, Reason: "is not a file of the module"}
		}
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		want, err := io.ReadAll(io.LimitReader(rc, int64(len(got))+1))
		rc.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return &VendorError{Module: m, File: rel, Reason: "was edited: it differs from the module's file"}
		}
	}
	return nil
}

func (v *verifier) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	return httpGet(ctx, v.http, u, limit)
}

func httpGet(ctx context.Context, c *http.Client, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "twinforge")
	resp, err := c.Do(req)
	if err != nil {
		return nil, &unreachableError{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: more than %d bytes", u, limit)
	}
	return data, nil
}

// clientOps is sumdb.ClientOps over HTTP, with the tree head in memory
// and the records and tiles cached in memory for one Verify.
type clientOps struct {
	ctx        context.Context
	http       *http.Client
	base, name string
	key        []byte

	mu          sync.Mutex
	latest      []byte
	cache       map[string][]byte
	secError    string
	unreachable *unreachableError
}

// ErrUnreachable is wrapped by errors that mean the proxy or the checksum
// database could not be reached at all: a failure, not a verdict.
var ErrUnreachable = errors.New("module proxy unreachable")

type unreachableError struct{ err error }

func (e *unreachableError) Error() string   { return e.err.Error() }
func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

var _ sumdb.ClientOps = (*clientOps)(nil)

func (o *clientOps) ReadRemote(path string) ([]byte, error) {
	data, err := httpGet(o.ctx, o.http, o.base+path, 16<<20)
	var ue *unreachableError
	if errors.As(err, &ue) {
		o.mu.Lock()
		if o.unreachable == nil {
			o.unreachable = ue
		}
		o.mu.Unlock()
	}
	return data, err
}

func (o *clientOps) unreachableErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unreachable == nil {
		return nil
	}
	return o.unreachable
}

func (o *clientOps) ReadConfig(file string) ([]byte, error) {
	switch file {
	case "key":
		return o.key, nil
	case o.name + "/latest":
		o.mu.Lock()
		defer o.mu.Unlock()
		return append([]byte(nil), o.latest...), nil
	}
	return nil, fmt.Errorf("unknown checksum database configuration %s", file)
}

func (o *clientOps) WriteConfig(file string, old, new []byte) error {
	if file != o.name+"/latest" {
		return fmt.Errorf("unknown checksum database configuration %s", file)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !bytes.Equal(old, o.latest) {
		return sumdb.ErrWriteConflict
	}
	o.latest = append([]byte(nil), new...)
	return nil
}

func (o *clientOps) ReadCache(file string) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if data, ok := o.cache[file]; ok {
		return data, nil
	}
	return nil, os.ErrNotExist
}

func (o *clientOps) WriteCache(file string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cache[file] = data
}

func (o *clientOps) Log(string) {}

func (o *clientOps) SecurityError(msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.secError == "" {
		o.secError = msg
	}
}

func (o *clientOps) security() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.secError
}

func (o *clientOps) latestNote() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]byte(nil), o.latest...)
}

// ProxyFromEnv is the module proxy the go command would use: the first
// http(s) entry of $GOPROXY, else DefaultProxy.
func ProxyFromEnv(getenv func(string) string) string {
	for _, p := range strings.FieldsFunc(getenv("GOPROXY"), func(r rune) bool { return r == ',' || r == '|' }) {
		if strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "http://") {
			return strings.TrimSuffix(p, "/")
		}
	}
	return DefaultProxy
}

// ConfigFromEnv is the Config of a verification against the checksum
// database sumDB, reached through the module proxy of $GOPROXY, skipping
// the modules of $GONOSUMDB and $GOPRIVATE as the go command does; getenv
// reads the environment (os.Getenv).
func ConfigFromEnv(sumDB string, getenv func(string) string) *Config {
	return &Config{
		Proxy:   ProxyFromEnv(getenv),
		SumDB:   sumDB,
		NoSumDB: strings.FieldsFunc(getenv("GONOSUMDB")+","+getenv("GOPRIVATE"), func(r rune) bool { return r == ',' }),
	}
}
