package kube

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReports(t *testing.T) {
	c, err := ParseWorkers("k8s://builds/pool")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		dep     Deployment
		dryRun  bool
		text    string
		jsonDoc string
	}{
		{"new pool", Deployment{Workers: []string{"pool-0", "pool-1"}, CertsDir: "/certs", NewCA: true}, false,
			"deployed 2 workers of " + c.String() + ": pool-0, pool-1\nnew CA in /certs\n",
			`{"pool":"` + c.String() + `","workers":["pool-0","pool-1"],"removed":[],"certsDir":"/certs","newCA":true,"dryRun":false}`},
		{"shrunk, dry run", Deployment{Workers: []string{"pool-0", "pool-1"}, Removed: []string{"pool-2"}, CertsDir: "/certs"}, true,
			"would deploy 2 workers of " + c.String() + ": pool-0, pool-1\nremoved: pool-2\nCA kept in /certs\n",
			`{"pool":"` + c.String() + `","workers":["pool-0","pool-1"],"removed":["pool-2"],"certsDir":"/certs","newCA":false,"dryRun":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.dep.Report(c, tc.dryRun)
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil || b.String() != tc.text {
				t.Errorf("WriteText = %q, %v; want %q", b.String(), err, tc.text)
			}
			if doc, err := json.Marshal(r); err != nil || string(doc) != tc.jsonDoc {
				t.Errorf("JSON = %s, %v; want %s", doc, err, tc.jsonDoc)
			}
		})
	}
	st := PoolStatus{Workers: []WorkerStatus{{Name: "pool-0", Node: "n1", Ready: true, Holder: "ci-1", Purpose: "build of hello"}, {Name: "pool-1", Reason: "Pending"}},
		Waiting: []string{"build of app"}}
	var b bytes.Buffer
	if err := st.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"WORKER  NODE  READY        BUILDING",
		"pool-0  n1    yes          build of hello (ci-1)",
		"pool-1  -     no: Pending  -",
		"waiting 1: build of app", ""}, "\n")
	if b.String() != want {
		t.Errorf("PoolStatus.WriteText =\n%s\nwant\n%s", b.String(), want)
	}
}
