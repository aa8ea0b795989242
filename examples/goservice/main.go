// Command goservice is the shape of a small public Go HTTP service: one
// router dependency, vendored, built in a Go stage with
// `go build -mod=vendor -trimpath -ldflags=-buildid=` and shipped alone on
// an empty image. twinforge builds it as a real-world example of a build
// that must reproduce on default settings.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/julienschmidt/httprouter"
)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: routes(), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("goservice listening on %s", *addr)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "goservice:", err)
		os.Exit(1)
	}
}

func routes() http.Handler {
	r := httprouter.New()
	r.GET("/healthz", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		w.Write([]byte("ok\n"))
	})
	r.GET("/hello/:name", func(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"greeting": "hello, " + ps.ByName("name"),
			"go":       runtime.Version(),
		})
	})
	return r
}
