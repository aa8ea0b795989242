// Command run starts twinforge's local Sigstore stack (package sigstack) in
// a directory for shell scripts such as `make demo`:
//
//	go run ./internal/sigstack/run -dir DIR &
//	while [ ! -s DIR/env ]; do sleep 0.2; done; . DIR/env
//
// Once every server answers it writes DIR/env, a file a shell can source:
//
//	TWINFORGE_OIDC_ISSUER='http://127.0.0.1:PORT/oidc'
//	TWINFORGE_FULCIO_URL='http://127.0.0.1:PORT'
//	TWINFORGE_TSA_URL='http://127.0.0.1:PORT'
//	TWINFORGE_TSA_TIMESTAMP_URL='http://127.0.0.1:PORT/api/v1/timestamp'
//	TWINFORGE_REKOR_URL='http://127.0.0.1:PORT'
//	TWINFORGE_TRUSTED_ROOT='DIR/trusted_root.json'
//	TWINFORGE_SIGNING_CONFIG='DIR/signing_config.json'
//	SIGSTORE_ID_TOKEN='<JWT for demo@twinforge.test, valid 1h>'
//	export TWINFORGE_OIDC_ISSUER ... SIGSTORE_ID_TOKEN
//
// (written to DIR/env.tmp and renamed, so it appears complete). It then
// runs until SIGINT or SIGTERM, stops the servers and removes DIR/env. It
// exits non-zero when the stack fails to start or to stop cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twinforge/twinforge/internal/sigstack"
)

func main() {
	dir := flag.String("dir", "", "directory for the stack's files (required)")
	bin := flag.String("bin", "", "directory of the server binaries (default: $TWINFORGE_BIN or the repository's bin/)")
	subject := flag.String("subject", "demo@twinforge.test", "subject and email of SIGSTORE_ID_TOKEN")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *bin, *subject); err != nil {
		fmt.Fprintln(os.Stderr, "sigstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, bin, subject string) (err error) {
	if dir == "" {
		return errors.New("-dir is required")
	}
	opts := []sigstack.Option{sigstack.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))}
	if bin != "" {
		opts = append(opts, sigstack.WithBinDir(bin))
	}
	st, err := sigstack.Start(ctx, dir, opts...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()

	tok, err := st.IDToken(ctx, sigstack.Claims{Subject: subject, Email: subject, Expiry: time.Hour})
	if err != nil {
		return err
	}
	envPath := filepath.Join(st.Dir(), "env")
	if err := writeEnv(envPath, append(st.Env(), "SIGSTORE_ID_TOKEN="+tok)); err != nil {
		return err
	}
	defer os.Remove(envPath)
	<-ctx.Done()
	return nil
}

func writeEnv(path string, vars []string) error {
	var b strings.Builder
	names := make([]string, 0, len(vars))
	for _, kv := range vars {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "%s='%s'\n", name, strings.ReplaceAll(value, "'", `'\''`))
		names = append(names, name)
	}
	fmt.Fprintf(&b, "export %s\n", strings.Join(names, " "))
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
