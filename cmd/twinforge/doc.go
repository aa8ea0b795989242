// Command twinforge builds container images hermetically and reproducibly:
// every input locked, every build rebuilt on an independent daemon, the
// result attested, published by digest and admitted only when verified.
//
// The command is wiring only. Each subcommand parses its flags into an
// options struct, validates them and makes one library call:
//
//	lock        hermetic.Create
//	build       pipeline.Run (rebuild/pipeline: build, rebuild, attest, sign, push)
//	diff        imagediff.Compare
//	push        distribute.Push
//	replicate   distribute.Replicate
//	verify      evidence.Open(...).Evidence, then Evidence.Verify
//	attest      verify.Describe of the evidence found
//	rebuild     audit.Run (rebuild/audit)
//	admission   admission.New, admission.Serve, admission.WriteManifests
//
// It alone picks how progress is shown (BuildKit's progressui) and writes
// results to stdout (text or --output json) and logs to stderr, and it maps
// the libraries' errors to exit codes: 0 success, 1 failure, 2 usage,
// 3 not reproducible, 4 refused by policy or verification.
package main
