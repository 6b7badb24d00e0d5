//go:build unix

package filetail

import (
	"os"
	"syscall"
)

// idOf is the identity of the file behind fi: its device and inode, which
// a rename keeps and a new file at the same path does not.
func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)} //nolint:unconvert // Dev's type differs by platform
	}
	return fileID{}
}
