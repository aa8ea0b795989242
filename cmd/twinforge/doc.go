// Command twinforge builds container images hermetically and reproducibly:
// every input locked, every build rebuilt on an independent daemon, the
// result attested, published by digest and admitted only when verified.
//
// The command is a translation layer, one file per command: it declares
// the flags, bound (Destination) to the fields of the library's plain
// request or settings struct, which the command's constructor makes, so
// that every run of the app has its own; its Action checks the arguments,
// makes one library call, maps its errors to exit codes and prints what
// it returns. What the CLI, the admission webhook or an auditor's program
// needs — checking settings, running a workflow, rendering a result —
// lives in the package that owns it:
//
//	lock        hermetic.ParseImageMappings, ParseSourceDateEpoch, LockRun.Run (relock, Create,
//	            Write, Summary, CheckTree)
//	build       rebuild.NewDaemons, pipeline.PublishSettings.Check, pipeline.NewVouch,
//	            Request.CheckSettings and SetDefaults, Publishing.Apply, pipeline.Run; pipeline.Show
//	diff        imagediff.CompareRefs; Report.WriteText
//	push        distribute.RegistrySettings, ParseAttachments, PushLayout; PushResult.WriteText
//	replicate   release.ReaderSettings.Config, release.Replication.Run; ReplicationReport renders it
//	verify      evidence.Check.Run; evidence.Report renders it, evidence.Refused carries a refusal
//	attest      evidence.Open(...).Evidence, then Evidence.Inspection
//	rebuild     audit.Settings Check and Load, audit.Run (rebuild/audit); audit.Show
//	admission   ServerSettings.Run, admission.ReverifyRun, admission.WriteManifests
//	node-agent  nodeagent.Settings.ServeConfig, nodeagent.Serve
//	release     distribute/release: InitKeyFiles, RootRotation, LoadKeys, Repository; its
//	            messages (Repository.TeamAdded, Released, ...) and Index.Listing
//	workers     isolation/kube: Cluster.Check, DeploySettings.Run, List, Remove;
//	            workercert.IssueRequest.Issue
//
// The files:
//
//	main.go          the app: global flags, logging, the command list, the hidden
//	                 rebuilder command, and helpText, which loads each command's long
//	                 help (Description) from help/*.txt, embedded. testdata/help holds
//	                 the rendered --help of every command, which TestHelpGolden
//	                 compares (go test -run HelpGolden -update-golden)
//	<command>.go     the command's options, its flags bound to them, and its Action
//	flags.go         argument helpers; registryFlags (distribute.RegistrySettings), shared by every command that
//	                 reaches a registry; --output (results implement WriteText and
//	                 are their own JSON document, internal/textout); --strict-variations
//	daemon.go        daemonFlags and workerFlags: where builds run (build, rebuild)
//	sign.go          signOptions: the flags of pipeline.PublishSettings (build, rebuild)
//	release.go       readerFlags (release.ReaderSettings), shared by verify, replicate,
//	                 release list and admission
//	admission.go     the policy, registry and API server flags admission and node-agent share
//	progress.go      --progress: BuildKit's progressui on stderr
//	exitcode.go      the exit codes, and which library errors map to which
//
// Settings the libraries check fail with errors naming the flag at fault
// (admission.ConfigError, evidence.ErrInvalidRequest, distribute and release
// ErrInvalidSetting, or the errors of a
// settings check such as Request.CheckSettings or rebuild.NewDaemons),
// which the command reports as usage errors.
//
// It alone picks how progress is shown and writes results to stdout and
// logs to stderr, and it maps the libraries' errors to exit codes:
// 0 success, 1 failure, 2 usage, 3 not reproducible, 4 refused by policy
// or verification.
package main
