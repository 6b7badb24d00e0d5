package procwatch

import "encoding/binary"

// The kernel's process events connector (linux/cn_proc.h, connector.h).
const (
	netlinkConnector  = 11
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procEventExec     = 0x00000002
	nlmsgHdrLen       = 16
	cnMsgLen          = 20
)

// execEvent is one exec the kernel reported.
type execEvent struct {
	tgid int
	at   int64 // kernel timestamp, ns since boot
}

// parseProcEvents walks the netlink messages of one datagram and yields
// the exec events.
func parseProcEvents(b []byte, yield func(execEvent)) {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return
		}
		m := b[nlmsgHdrLen:l]
		// cn_msg, then proc_event: what, cpu, timestamp_ns, event data.
		if len(m) >= cnMsgLen+16+8 && binary.NativeEndian.Uint32(m[cnMsgLen:]) == procEventExec {
			ev := m[cnMsgLen:]
			yield(execEvent{
				at:   int64(binary.NativeEndian.Uint64(ev[8:])),
				tgid: int(binary.NativeEndian.Uint32(ev[20:])),
			})
		}
		adv := (l + 3) &^ 3 // messages are 4-byte aligned
		if adv > len(b) {
			return
		}
		b = b[adv:]
	}
}
