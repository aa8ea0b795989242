// Package tuffetch is the go-tuf fetcher twinforge's TUF clients share:
// go-tuf's default fetcher has no context, so a refresh could not be
// cancelled, and it follows the user agent of the library, not twinforge.
package tuffetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
)

// HTTP fetches metadata and targets with Client, bound to Ctx: one
// refresh's context.
type HTTP struct {
	Ctx    context.Context
	Client *http.Client
}

var _ fetcher.Fetcher = (*HTTP)(nil)

// DownloadFile GETs u, refusing an answer longer than maxLength with the
// error go-tuf expects for it.
func (f *HTTP) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.Ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "twinforge")
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: u}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is longer than %d bytes", u, maxLength)}
	}
	return data, nil
}
