// Command twinforge builds container images hermetically and reproducibly:
// every input locked, every build rebuilt on an independent daemon, the
// result attested, published by digest and admitted only when verified.
//
// The command is a translation layer, one file per command: it declares
// the flags, reads them into the library's plain request or settings
// struct, and makes one library call. What the CLI, the admission webhook
// or an auditor's program needs — checking settings, running a workflow,
// rendering a result — lives in the package that owns it:
//
//	lock        hermetic.Create, then Lock.Write
//	build       rebuild.NewDaemons, pipeline.NewVouch, pipeline.Run; pipeline.NewOutput renders it
//	diff        imagediff.Compare; Report.WriteText
//	push        distribute.Push; PushResult.WriteText
//	replicate   distribute.Replicate, release.Replicate; release.ReplicationReport renders both
//	verify      evidence.Check.Run; evidence.Report renders it, evidence.Refused carries a refusal
//	attest      evidence.Open(...).Evidence, then Evidence.Inspect
//	rebuild     audit.Run (rebuild/audit); audit.Report.WriteText
//	admission   admission.ServerSettings, ReverifySettings, admission.New, ServerSettings.ListenAndServe,
//	            admission.WriteManifests; ReverifyReport.WriteText
//	node-agent  nodeagent.Settings.ServeConfig, nodeagent.Serve
//	release     distribute/release: InitKeyFiles, RootRotation, LoadKeys, Repository; Index.Listing
//	workers     isolation/kube: Deploy, List, Remove; DeployReport and PoolStatus render them
//
// Results implement WriteText and are their own --output json document, so
// a command only picks the format (output.go). Settings the libraries
// check fail with errors naming the flag at fault (admission.ConfigError,
// evidence.ErrInvalidRequest, or errors of a settings constructor such as
// rebuild.NewDaemons), which the command reports as usage errors.
//
// It alone picks how progress is shown (BuildKit's progressui) and writes
// results to stdout and logs to stderr, and it maps the libraries' errors
// to exit codes: 0 success, 1 failure, 2 usage, 3 not reproducible,
// 4 refused by policy or verification.
package main
