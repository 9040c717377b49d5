package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a real child process of the campus (authorizer, terminald), its
// output going to a log file in the campus folder.
type Proc struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args; stdout and stderr go to dir/name.log.
func Start(dir, name, bin string, args []string, env []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("scenario: %s: log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so a demo interrupted by ^C stops it cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("scenario: start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop asks the process to stop (SIGTERM) and waits up to grace before
// killing it.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("scenario: %s did not stop within %v", p.Name, grace)
	}
}

// DumpGoroutines asks a Go child process for its goroutine dump (SIGQUIT
// prints every stack to its log and exits), for a post-mortem of a box
// that stopped answering.
func (p *Proc) DumpGoroutines(wait time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(wait):
	}
}

// ExitError says that the process exited, how, and how its log ends: a
// test's folder is gone by the time anyone reads the failure.
func (p *Proc) ExitError() error {
	return fmt.Errorf("scenario: %s exited: %v (see %s); its log ends:\n%s", p.Name, p.err, p.Log, p.LogTail(4096))
}

// LogTail returns the last n bytes (at most) of the process's log.
func (p *Proc) LogTail(n int64) string {
	f, err := os.Open(p.Log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return err.Error()
	}
	return string(b)
}

// Kill ends the process at once (SIGKILL), like a power cut.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// WaitHTTP polls url until it answers 2xx, the process exits, or ctx ends.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scenario: %s not ready at %s: %w (see %s)", p.Name, url, ctx.Err(), p.Log)
		case <-p.done:
			return p.ExitError()
		case <-tick.C:
		}
	}
}

// WaitTCP polls addr until it accepts a connection, the process exits or
// ctx ends.
func (p *Proc) WaitTCP(ctx context.Context, addr string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scenario: %s not listening on %s: %w (see %s)", p.Name, addr, ctx.Err(), p.Log)
		case <-p.done:
			return p.ExitError()
		case <-tick.C:
		}
	}
}

// FreeAddr returns a free 127.0.0.1 TCP address.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var errFailed = errors.New("scenario: an expected outcome differed")

func afterBackoff() <-chan time.Time { return time.After(200 * time.Millisecond) }
