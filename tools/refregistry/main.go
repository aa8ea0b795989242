// Command twinforge-refregistry is an OCI registry with the OCI 1.1
// referrers API: go-containerregistry's pkg/registry with referrers support
// and blobs on disk (manifests stay in memory). twinforge's distribute tests
// run it as the registry kind that answers GET /v2/<name>/referrers/<digest>.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on")
	dir := flag.String("dir", "", "directory for blobs (required)")
	verbose := flag.Bool("v", false, "log every request to stderr")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}
	h := registry.New(
		registry.WithReferrersSupport(true),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(*dir)),
		registry.Logger(log.New(logw, "", log.LstdFlags)),
	)
	log.Printf("serving on %s, blobs in %s", *addr, *dir)
	log.Fatal(http.ListenAndServe(*addr, h))
}
