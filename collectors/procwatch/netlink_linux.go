//go:build linux

package procwatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// procConnector receives exec events from the kernel: every exec, however
// short-lived the process. Opening it needs CAP_NET_ADMIN in the initial
// user and pid namespaces, which a sidecar does not have.
type procConnector struct {
	fd int
}

func openProcConnector() (*procConnector, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkConnector)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	pc := &procConnector{fd: fd}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		pc.close()
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], syscall.NLMSG_DONE)
	binary.NativeEndian.PutUint32(msg[16:], cnIdxProc)
	binary.NativeEndian.PutUint32(msg[20:], cnValProc)
	binary.NativeEndian.PutUint16(msg[32:], 4)
	binary.NativeEndian.PutUint32(msg[36:], procCnMcastListen)
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		pc.close()
		return nil, fmt.Errorf("netlink listen: %w", err)
	}
	// A receive timeout lets the reader notice cancellation.
	tv := syscall.Timeval{Usec: 200_000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		pc.close()
		return nil, fmt.Errorf("netlink timeout: %w", err)
	}
	return pc, nil
}

func (p *procConnector) close() { _ = syscall.Close(p.fd) } // nothing to flush on a socket we only read

// run reads exec events until ctx ends, handing each to out; when out is
// full the event is counted in dropped (polling still sees the process if
// it lives long enough).
func (p *procConnector) run(ctx context.Context, out chan<- execEvent, dropped func()) error {
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		n, _, err := syscall.Recvfrom(p.fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.ENOBUFS) {
				dropped() // the kernel dropped events: the socket buffer overflowed
				continue
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		parseProcEvents(buf[:n], func(ev execEvent) {
			select {
			case out <- ev:
			default:
				dropped()
			}
		})
	}
	return nil
}
