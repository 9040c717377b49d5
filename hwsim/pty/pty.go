// Package pty gives each simulated serial device a pseudo-terminal: the
// simulator (a twin) talks on the master side, and the real driver opens the
// slave side, through a stable symlink, exactly as it opens a USB-serial
// adapter.
//
// The slave is put in raw mode so that every byte value passes unchanged,
// and the simulator keeps its own slave descriptor open for the life of the
// Port: otherwise the master reads EIO whenever the driver closes its port.
package pty

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cpty "github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Port is one pseudo-terminal. Read and Write act on the master side.
type Port struct {
	master *os.File
	slave  *os.File // held open, never read: see the package comment
	name   string   // /dev/pts/N
	link   string   // stable symlink, "" for none
}

// Open creates a pseudo-terminal in raw mode. When link is not empty, a
// symlink at that path (parent directories created) points to the slave;
// an existing symlink there is replaced.
func Open(link string) (*Port, error) {
	m, s, err := cpty.Open()
	if err != nil {
		return nil, fmt.Errorf("pty: open: %w", err)
	}
	p := &Port{slave: s, name: s.Name(), link: link}
	// creack/pty leaves the master in blocking mode; a non-blocking copy is
	// served by the runtime poller, so Close and deadlines unblock Read.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pty: dup master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, fmt.Errorf("pty: master non-blocking: %w", err)
	}
	p.master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := makeRaw(int(s.Fd())); err != nil {
		p.closeFiles()
		return nil, fmt.Errorf("pty: raw mode on %s: %w", p.name, err)
	}
	if link != "" {
		if err := replaceSymlink(p.name, link); err != nil {
			p.closeFiles()
			return nil, fmt.Errorf("pty: link %s -> %s: %w", link, p.name, err)
		}
	}
	return p, nil
}

// makeRaw is cfmakeraw(3): no echo, no canonical mode, no CR/NL mapping,
// no signals, 8 bits, no parity.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR |
		unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK | unix.IUCLC
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// replaceSymlink points link at target atomically (rename over the old one).
func replaceSymlink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", link, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Path is what a driver opens: the symlink if there is one, else the slave.
func (p *Port) Path() string {
	if p.link != "" {
		return p.link
	}
	return p.name
}

// SlaveName is the /dev/pts/N name of the slave side.
func (p *Port) SlaveName() string { return p.name }

// Read reads what the driver wrote to the slave.
func (p *Port) Read(b []byte) (int, error) { return p.master.Read(b) }

// Write sends bytes to the driver.
func (p *Port) Write(b []byte) (int, error) { return p.master.Write(b) }

// SetReadDeadline bounds the next Reads on the master.
func (p *Port) SetReadDeadline(t time.Time) error { return p.master.SetReadDeadline(t) }

// Flush discards bytes written to the driver and not read yet, and bytes
// the driver wrote that the simulator has not read, like a device reset.
func (p *Port) Flush() error {
	return unix.IoctlSetInt(int(p.slave.Fd()), unix.TCFLSH, unix.TCIOFLUSH)
}

// Close removes the symlink (if it still points to this pty) and closes
// both sides. A blocked Read returns an error.
func (p *Port) Close() error {
	var errs []error
	if p.link != "" {
		if dst, err := os.Readlink(p.link); err == nil && dst == p.name {
			if err := os.Remove(p.link); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, p.closeFiles())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pty: close %s: %w", p.name, err)
	}
	return nil
}

func (p *Port) closeFiles() error {
	return errors.Join(p.master.Close(), p.slave.Close())
}

// Queued reports how many bytes written to the driver are still waiting in
// the terminal's input queue (TIOCINQ): a diagnostic for a driver that
// stopped reading.
func (p *Port) Queued() (int, error) {
	return unix.IoctlGetInt(int(p.slave.Fd()), unix.TIOCINQ)
}
