// Command timestamp-server is the RFC 3161 timestamp authority of
// twinforge's local Sigstore stack: the REST API of
// github.com/sigstore/timestamp-authority (pinned in go.mod), served the way
// its cmd/timestamp-server "serve" does, with two differences that let
// several instances run side by side on one machine:
//
//   - no Prometheus server: upstream always binds :2112 on every interface
//     and exits when that port is taken;
//   - no NTP monitor: the machine is offline.
//
// Flags keep upstream's names. The REST API is http://HOST:PORT/api/v1/timestamp
// and .../timestamp/certchain; SIGINT or SIGTERM stop it.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spf13/viper"

	"github.com/sigstore/timestamp-authority/pkg/log"
	"github.com/sigstore/timestamp-authority/pkg/server"
)

func main() {
	fs := flag.NewFlagSet("timestamp-server", flag.ExitOnError)
	host := fs.String("host", "127.0.0.1", "address to serve on")
	port := fs.Int("port", 3000, "port to serve on")
	logType := fs.String("log-type", "dev", "logger type (dev/prod)")
	// pkg/api reads these through viper, as upstream's flags do.
	for _, f := range []struct{ name, def, usage string }{
		{"timestamp-signer", "memory", "signer: memory, kms, tink or file"},
		{"timestamp-signer-hash", "sha256", "hash algorithm of the signer"},
		{"certificate-chain-path", "", "PEM certificate chain of a kms, tink or file signer"},
		{"file-signer-key-path", "", "PEM private key of the file signer"},
		{"file-signer-passwd", "", "password of the file signer's key"},
	} {
		fs.String(f.name, f.def, f.usage)
	}
	fs.Bool("include-chain-in-response", false, "include the issuing chain in responses")
	fs.Bool("enforce-intermediate-eku", true, "require the timestamping EKU on intermediates")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "serve" { // upstream's subcommand
		args = args[1:]
	}
	_ = fs.Parse(args)
	fs.VisitAll(func(f *flag.Flag) { viper.Set(f.Name, f.Value.String()) })

	log.ConfigureLogger(*logType)
	srv := server.NewRestAPIServer(*host, *port, []string{"http"}, false, 10*time.Second, 10*time.Second)
	if err := srv.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, "timestamp-server:", err)
		os.Exit(1)
	}
}
