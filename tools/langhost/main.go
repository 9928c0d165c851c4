// Command pulumi-language-python is dcops' own minimal Pulumi language host for
// Python programs.
//
// The upstream host (module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3)
// cannot be fetched through the module proxy available to this project, so this
// small replacement speaks the same LanguageRuntime gRPC protocol (from
// github.com/pulumi/pulumi/sdk/v3/proto/go) and runs programs through the
// upstream `pulumi-language-python-exec` shim, which must sit next to this
// binary.
//
// The engine starts the host as
//
//	pulumi-language-python [--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS
//
// and reads the TCP port the host prints as the first line of stdout.
//
// Choice of interpreter: $PULUMI_PYTHON_CMD if set, else the `virtualenv`
// runtime option of Pulumi.yaml (relative to the project root), else python3
// on PATH.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Version is reported through GetPluginInfo and About; set with -ldflags "-X main.Version=...".
var Version = "3.255.0"

const (
	execShimName = "pulumi-language-python-exec"
	// Exit code the exec shim uses after it already reported the error to the engine.
	exitCodeUserActionable = 32
)

type options struct {
	engineAddress string
	tracing       string
	executor      string
	root          string
	virtualenv    string
}

// parseArgs accepts the flags the engine may pass (--logtostderr, -v=N, --tracing X)
// plus a few upstream-compatible ones, and tolerates unknown flags rather than
// failing: the engine address is the last positional argument.
func parseArgs(args []string) options {
	var o options
	valueFlags := map[string]*string{
		"tracing":      &o.tracing,
		"use-executor": &o.executor,
		"root":         &o.root,
		"virtualenv":   &o.virtualenv,
		"toolchain":    nil,
		"typechecker":  nil,
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if eq := strings.IndexByte(name, '='); eq >= 0 {
			name, value, hasValue = name[:eq], name[eq+1:], true
		}
		dst, isValueFlag := valueFlags[name]
		if !isValueFlag {
			continue // boolean or unknown flag (e.g. --logtostderr, -v=9)
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		if dst != nil {
			*dst = value
		}
	}
	if len(positional) > 0 {
		o.engineAddress = positional[len(positional)-1]
	}
	return o
}

func main() {
	for _, a := range os.Args[1:] {
		if a == "--version" || a == "-version" {
			fmt.Println(Version)
			return
		}
	}
	opts := parseArgs(os.Args[1:])

	if opts.executor == "" {
		self, err := os.Executable()
		if err == nil {
			if resolved, rerr := filepath.EvalSymlinks(self); rerr == nil {
				self = resolved
			}
			opts.executor = filepath.Join(filepath.Dir(self), execShimName)
		}
	}
	if _, err := os.Stat(opts.executor); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: missing executor %q (it must be installed next to this binary): %v\n",
			opts.executor, err)
		os.Exit(1)
	}

	host := &pythonHost{opts: opts, running: map[*exec.Cmd]struct{}{}}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: could not start RPC server: %v\n", err)
		os.Exit(1)
	}

	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: RPC server stopped: %v\n", err)
		os.Exit(1)
	}
}

// pythonHost implements pulumirpc.LanguageRuntimeServer. Everything not defined
// here (RunPlugin, GenerateProgram, GenerateProject, GeneratePackage, Pack, Link,
// Template) answers codes.Unimplemented through the embedded type.
type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	opts options

	mu               sync.Mutex
	rootDirectory    string
	programDirectory string
	running          map[*exec.Cmd]struct{}
}

func (h *pythonHost) engineAddress() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opts.engineAddress
}

func (h *pythonHost) Handshake(_ context.Context,
	req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		h.opts.engineAddress = req.GetEngineAddress()
	}
	h.rootDirectory = req.GetRootDirectory()
	h.programDirectory = req.GetProgramDirectory()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *pythonHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

// GetRequiredPlugins returns nothing: dcops programs use no external provider plugins.
func (h *pythonHost) GetRequiredPlugins(context.Context,
	*pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// GetRequiredPackages returns nothing: dcops programs use no external provider plugins.
func (h *pythonHost) GetRequiredPackages(context.Context,
	*pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *pythonHost) GetProgramDependencies(context.Context,
	*pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

// InstallDependencies is a no-op: dependencies are installed by the project's own scripts.
func (h *pythonHost) InstallDependencies(*pulumirpc.InstallDependenciesRequest,
	grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return nil
}

func (h *pythonHost) RuntimeOptionsPrompts(context.Context,
	*pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *pythonHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	py, err := h.interpreter(req.GetInfo())
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, py.path, "--version")
	cmd.Env = py.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("running %s --version: %w: %s", py.path, err, out)
	}
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Python "))
	return &pulumirpc.AboutResponse{
		Executable: py.path,
		Version:    version,
		Metadata:   map[string]string{"languageHost": "dcops pulumi-language-python " + Version},
	}, nil
}

// Cancel stops any program still running.
func (h *pythonHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cmd := range h.running {
		if cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
	}
	return &emptypb.Empty{}, nil
}

type interpreter struct {
	path string
	env  []string
}

// interpreter picks the Python to run: $PULUMI_PYTHON_CMD, else the virtualenv
// runtime option (relative to the project root), else python3 on PATH.
func (h *pythonHost) interpreter(info *pulumirpc.ProgramInfo) (interpreter, error) {
	env := os.Environ()
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		path, err := exec.LookPath(cmd)
		if err != nil {
			return interpreter{}, fmt.Errorf("PULUMI_PYTHON_CMD=%q: %w", cmd, err)
		}
		return interpreter{path: path, env: env}, nil
	}

	venv := h.opts.virtualenv
	if info != nil && info.GetOptions() != nil {
		if v, ok := info.GetOptions().GetFields()["virtualenv"]; ok && v.GetStringValue() != "" {
			venv = v.GetStringValue()
		}
	}
	if venv != "" {
		root := h.opts.root
		if info != nil && info.GetRootDirectory() != "" {
			root = info.GetRootDirectory()
		}
		h.mu.Lock()
		if root == "" {
			root = h.rootDirectory
		}
		h.mu.Unlock()
		if !filepath.IsAbs(venv) && root != "" {
			venv = filepath.Join(root, venv)
		}
		venv = filepath.Clean(venv)
		py := filepath.Join(venv, "bin", "python")
		if _, err := os.Stat(py); err != nil {
			return interpreter{}, fmt.Errorf(
				"the 'virtualenv' option in Pulumi.yaml is set to %q, but %s does not exist; "+
					"create it with: python3 -m venv %s && %s -m pip install -r requirements.txt",
				venv, py, venv, py)
		}
		return interpreter{path: py, env: venvEnv(env, venv)}, nil
	}

	path, err := exec.LookPath("python3")
	if err != nil {
		return interpreter{}, errors.New("python3 not found on PATH (set PULUMI_PYTHON_CMD or the " +
			"'virtualenv' runtime option in Pulumi.yaml)")
	}
	return interpreter{path: path, env: env}, nil
}

// venvEnv activates a virtual environment the way `source bin/activate` would.
func venvEnv(env []string, venv string) []string {
	out := make([]string, 0, len(env)+2)
	pathSet := false
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "PYTHONHOME="), strings.HasPrefix(kv, "VIRTUAL_ENV="):
			continue
		case strings.HasPrefix(kv, "PATH="):
			kv = "PATH=" + filepath.Join(venv, "bin") + string(os.PathListSeparator) + kv[len("PATH="):]
			pathSet = true
		}
		out = append(out, kv)
	}
	if !pathSet {
		out = append(out, "PATH="+filepath.Join(venv, "bin"))
	}
	return append(out, "VIRTUAL_ENV="+venv)
}

func runArgs(req *pulumirpc.RunRequest, engine, tracing string) []string {
	args := []string{
		"--monitor", req.GetMonitorAddress(),
		"--engine", engine,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
	}
	if org := req.GetOrganization(); org != "" {
		args = append(args, "--organization", org)
	}
	if root := req.GetInfo().GetRootDirectory(); root != "" {
		args = append(args, "--root_directory", root)
	}
	if tracing != "" {
		args = append(args, "--tracing", tracing)
	}
	program := req.GetProgram()
	if program == "" {
		program = "."
	}
	args = append(args, program)
	return append(args, req.GetArgs()...)
}

func (h *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	py, err := h.interpreter(req.GetInfo())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("serializing config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing config secret keys: %w", err)
	}

	args := append([]string{"-u", h.opts.executor}, runArgs(req, h.engineAddress(), h.opts.tracing)...)
	cmd := exec.Command(py.path, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(py.env,
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON),
		"PYTHONUNBUFFERED=1",
	)
	// The engine shows the host's stdout/stderr as diagnostics of the stack, so
	// the program's output (and any traceback it prints) is passed straight through.
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr

	if err := cmd.Start(); err != nil {
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("could not start Python program with %s: %v", py.path, err),
		}, nil
	}
	h.mu.Lock()
	h.running[cmd] = struct{}{}
	h.mu.Unlock()

	// Stop the program if the engine gives up on the call.
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGINT)
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	h.mu.Lock()
	delete(h.running, cmd)
	h.mu.Unlock()

	if err == nil {
		return &pulumirpc.RunResponse{}, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("running Python program: %v", err)}, nil
	}
	code := exitErr.ExitCode()
	if code == exitCodeUserActionable {
		// The shim already sent the error (with the traceback) to the engine.
		return &pulumirpc.RunResponse{Bail: true}, nil
	}
	msg := fmt.Sprintf("Program exited with non-zero exit code: %d", code)
	if code < 0 {
		msg = fmt.Sprintf("Program exited unexpectedly: %v", exitErr)
	}
	return &pulumirpc.RunResponse{Error: msg}, nil
}
