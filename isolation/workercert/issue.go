package workercert

import (
	"errors"

	"github.com/twinforge/twinforge/internal/errclass"
)

// ErrInvalidRequest is wrapped by every error of IssueRequest.Issue about
// the request itself rather than the files: such errors name the flag of
// `twinforge workers certs` at fault and keep their message; to the CLI
// they are usage errors.
var ErrInvalidRequest = errors.New("invalid certificate request")

// IssueRequest is `twinforge workers certs`: the certificates to issue
// into Dir with the CA of Pool kept there.
type IssueRequest struct {
	// Dir holds the CA and the certificates; Pool names the pool, part of
	// every identity.
	Dir, Pool string
	// Workers are NAME=HOST[,HOST...]: a worker and the names clients
	// reach it by (ParseWorkers).
	Workers []string
	// Clients name client certificates.
	Clients []string
}

// Issue checks the request and issues its certificates as IssueFiles
// does. A request for nothing is refused: it would at most make the CA,
// and a forgotten --worker would go unnoticed.
func (r IssueRequest) Issue() (*Files, error) {
	ws, err := ParseWorkers(r.Workers)
	if err != nil {
		return nil, errclass.Mark(ErrInvalidRequest, err)
	}
	if len(ws) == 0 && len(r.Clients) == 0 {
		return nil, errclass.Errorf(ErrInvalidRequest, "give at least one --worker or --client")
	}
	return IssueFiles(r.Dir, r.Pool, ws, r.Clients)
}
