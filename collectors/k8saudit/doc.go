// Package k8saudit tails kube-apiserver audit log files (the log backend's
// audit.log: one audit.k8s.io Event as JSON per line) and hands each event
// to the publisher.
//
// It follows files across rotation — rename and create (kube-apiserver's own
// lumberjack rotation, logrotate's default) by draining the renamed file
// before moving to the new one, and copytruncate by noticing the file shrink
// — and across restarts: the position of each file (device, inode, byte
// offset) is checkpointed durably only after JetStream acknowledged the lines
// before it, and a file rotated while the collector was down is found again
// by its inode. Each event's message id is its natural identity,
// msgid.K8sAudit(auditID, stage), so lines re-sent after a crash are dropped
// by JetStream as duplicates: no loss, no duplicates.
//
// A partial last line waits until it is complete. A line that is not a valid
// audit event is never dropped: it goes to the dead-letter stream (stage
// "collector") with the reason.
//
// It must not interpret events beyond their identity (that is the
// processor's job) nor write to the files it reads.
package k8saudit
