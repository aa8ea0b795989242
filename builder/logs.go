package builder

import (
	"bytes"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// failureLogLines is how many log lines of a failed step an error shows.
const failureLogLines = 12

// vertexLogs keeps the last log lines of every build step, so an error can
// show what the failed step printed.
type vertexLogs struct {
	mu     sync.Mutex
	names  map[digest.Digest]string
	errs   map[digest.Digest]string
	order  []digest.Digest
	lines  map[digest.Digest][]string
	buffer map[digest.Digest]*bytes.Buffer
	cached map[digest.Digest]bool
}

func newVertexLogs() *vertexLogs {
	return &vertexLogs{
		names:  map[digest.Digest]string{},
		errs:   map[digest.Digest]string{},
		lines:  map[digest.Digest][]string{},
		buffer: map[digest.Digest]*bytes.Buffer{},
		cached: map[digest.Digest]bool{},
	}
}

func (l *vertexLogs) add(s *client.SolveStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range s.Vertexes {
		if _, ok := l.names[v.Digest]; !ok {
			l.order = append(l.order, v.Digest)
		}
		l.names[v.Digest] = v.Name
		if v.Error != "" {
			l.errs[v.Digest] = v.Error
		}
		if v.Cached {
			l.cached[v.Digest] = true
		}
	}
	for _, lg := range s.Logs {
		buf := l.buffer[lg.Vertex]
		if buf == nil {
			buf = &bytes.Buffer{}
			l.buffer[lg.Vertex] = buf
		}
		buf.Write(lg.Data)
		for {
			line, err := buf.ReadString('\n')
			if err != nil {
				// Keep the incomplete line for the next chunk.
				buf.Reset()
				buf.WriteString(line)
				break
			}
			l.push(lg.Vertex, strings.TrimRight(line, "\r\n"))
		}
	}
}

func (l *vertexLogs) push(v digest.Digest, line string) {
	lines := append(l.lines[v], line)
	if len(lines) > failureLogLines {
		lines = lines[len(lines)-failureLogLines:]
	}
	l.lines[v] = lines
}

// failureTail names the failed step and its last log lines, ready to
// append to an error message.
func (l *vertexLogs) failureTail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, v := range l.order {
		if _, failed := l.errs[v]; !failed {
			continue
		}
		if strings.Contains(l.errs[v], "context canceled") {
			continue
		}
		lines := l.lines[v]
		if rest := l.buffer[v]; rest != nil && rest.Len() > 0 {
			lines = append(lines, rest.String())
		}
		b.WriteString("\nfailed step: " + l.names[v])
		if len(lines) > 0 {
			b.WriteString("\nits last output:\n  " + strings.Join(lines, "\n  "))
		}
	}
	return b.String()
}

// steps is how many steps the build had, and how many of them BuildKit
// reused from its cache.
func (l *vertexLogs) steps() (all, cached int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order), len(l.cached)
}
