//go:build !unix

package k8saudit

import "os"

// idOf has no inode to read here: rotation by rename is not detected, only
// truncation. The audit log tail is meant for Linux nodes.
func idOf(os.FileInfo) fileID { return fileID{} }
