package auditd

import (
	"slices"

	"github.com/elastic/go-libaudit/v2/aucoalesce"
	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// OCSF classes this mapper emits (category in the thousands digit).
const (
	ocsfFileActivity    = 1001
	ocsfProcessActivity = 1007
	ocsfAccountChange   = 3001
	ocsfAuthentication  = 3002
	ocsfNetworkActivity = 4001
	ocsfBaseEvent       = 0
	ocsfOther           = 99
)

// classify sets the OCSF class and activity, and the severity. The record
// type decides for user-space records (logins, account changes); for a
// syscall the syscall does, and otherwise go-libaudit's ECS category:
//
//	record or syscall                                   OCSF class               activity
//	SYSCALL execve, execveat (EXECVE records)           1007 Process Activity    1 Launch
//	USER_CMD (sudo)                                     1007 Process Activity    1 Launch
//	SYSCALL ptrace                                      1007 Process Activity    4 Inject
//	SYSCALL setuid, setreuid, setresuid, setfsuid       1007 Process Activity    5 Set User ID
//	other process events (kill, ANOM_ABEND, …)          1007 Process Activity    2 Terminate for ECS type end, else 99
//	SYSCALL open, openat, openat2, creat (PATH)         1001 File System Activity 14 Open (1 Create when it created)
//	SYSCALL unlink*, rmdir                              1001                      4 Delete
//	SYSCALL rename*                                     1001                      5 Rename
//	SYSCALL chmod*, chown*, setxattr*, …                1001                      6 Set Attributes
//	SYSCALL mount / umount*                             1001                      12 Mount / 13 Unmount
//	other file events (mkdir, link, truncate, …)        1001                      1 Create, 3 Update, 4 Delete, 99 by ECS type
//	SYSCALL connect, accept, accept4                    4001 Network Activity    1 Open
//	SYSCALL bind, listen                                4001 Network Activity    7 Listen
//	other network events                                4001 Network Activity    99
//	USER_LOGIN, LOGIN, USER_AUTH, USER_START            3002 Authentication      1 Logon
//	USER_LOGOUT, USER_END                               3002 Authentication      2 Logoff
//	USER_ACCT, USER_ERR, CRED_ACQ/DISP/REFR, …          3002 Authentication      99
//	ADD_USER, ADD_GROUP                                 3001 Account Change      1 Create
//	USER_CHAUTHTOK, GRP_CHAUTHTOK                       3001 Account Change      3 Password Change
//	ACCT_UNLOCK / ACCT_LOCK                             3001 Account Change      2 Enable / 9 Lock
//	DEL_USER, DEL_GROUP                                 3001 Account Change      6 Delete
//	ROLE_ASSIGN / ROLE_REMOVE                           3001 Account Change      7 Attach / 8 Detach Policy
//	USER_MGMT, GRP_MGMT, USER_ROLE_CHANGE, other iam    3001 Account Change      99
//	other authentication and session events             3002 Authentication      99
//	configuration and host events (CONFIG_CHANGE,       0 Base Event             99
//	NETFILTER_CFG, clock changes) and anything else
//
// Severity: anomalies (go-libaudit's event.kind alert: ANOM_*) are Medium
// (event.severity 47, OCSF 3), a failed authentication Low (21, 2),
// everything else Informational (OCSF 1).
func classify(ae *aucoalesce.Event, ev *schemas.Event) {
	class, activity := classOf(ae, ev)
	ev.OCSF.ClassUID, ev.OCSF.ActivityID = class, activity
	ev.OCSF.CategoryUID = class / 1000
	switch {
	case ev.Event.Kind == "alert":
		ev.Event.Severity, ev.OCSF.SeverityID = 47, 3
	case class == ocsfAuthentication && ev.Event.Outcome == "failure":
		ev.Event.Severity, ev.OCSF.SeverityID = 21, 2
	default:
		ev.OCSF.SeverityID = 1
	}
}

func classOf(ae *aucoalesce.Event, ev *schemas.Event) (class, activity int32) {
	switch ae.Type {
	case auparse.AUDIT_USER_LOGIN, auparse.AUDIT_LOGIN, auparse.AUDIT_USER_AUTH, auparse.AUDIT_USER_START:
		return ocsfAuthentication, 1
	case auparse.AUDIT_USER_LOGOUT, auparse.AUDIT_USER_END:
		return ocsfAuthentication, 2
	case auparse.AUDIT_USER_ACCT, auparse.AUDIT_USER_ERR, auparse.AUDIT_CRED_ACQ, auparse.AUDIT_CRED_DISP, auparse.AUDIT_CRED_REFR:
		return ocsfAuthentication, ocsfOther
	case auparse.AUDIT_ADD_USER, auparse.AUDIT_ADD_GROUP:
		return ocsfAccountChange, 1
	case auparse.AUDIT_USER_CHAUTHTOK, auparse.AUDIT_GRP_CHAUTHTOK:
		return ocsfAccountChange, 3
	case auparse.AUDIT_ACCT_UNLOCK:
		return ocsfAccountChange, 2
	case auparse.AUDIT_ACCT_LOCK:
		return ocsfAccountChange, 9
	case auparse.AUDIT_DEL_USER, auparse.AUDIT_DEL_GROUP:
		return ocsfAccountChange, 6
	case auparse.AUDIT_ROLE_ASSIGN:
		return ocsfAccountChange, 7
	case auparse.AUDIT_ROLE_REMOVE:
		return ocsfAccountChange, 8
	case auparse.AUDIT_USER_MGMT, auparse.AUDIT_GRP_MGMT, auparse.AUDIT_USER_ROLE_CHANGE:
		return ocsfAccountChange, ocsfOther
	case auparse.AUDIT_USER_CMD:
		return ocsfProcessActivity, 1
	}
	switch syscall := ae.Data["syscall"]; syscall {
	case "execve", "execveat":
		return ocsfProcessActivity, 1
	case "ptrace":
		return ocsfProcessActivity, 4
	case "setuid", "setreuid", "setresuid", "setfsuid":
		return ocsfProcessActivity, 5
	case "open", "openat", "openat2", "open_by_handle_at", "creat":
		if slices.Contains(ev.Event.Type, "creation") {
			return ocsfFileActivity, 1
		}
		return ocsfFileActivity, 14
	case "unlink", "unlinkat", "rmdir":
		return ocsfFileActivity, 4
	case "rename", "renameat", "renameat2":
		return ocsfFileActivity, 5
	case "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
		"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr":
		return ocsfFileActivity, 6
	case "mount":
		return ocsfFileActivity, 12
	case "umount", "umount2":
		return ocsfFileActivity, 13
	case "connect", "accept", "accept4":
		return ocsfNetworkActivity, 1
	case "bind", "listen":
		return ocsfNetworkActivity, 7
	}
	has := func(s []string, x string) bool { return slices.Contains(s, x) }
	cat, typ := ev.Event.Category, ev.Event.Type
	switch {
	case has(cat, "configuration") || has(cat, "host"):
		// The audit system, the firewall, the clock: no OCSF class.
		return ocsfBaseEvent, ocsfOther
	case has(cat, "authentication") || has(cat, "session"):
		return ocsfAuthentication, ocsfOther
	case has(cat, "iam"):
		return ocsfAccountChange, ocsfOther
	case has(cat, "network"):
		return ocsfNetworkActivity, ocsfOther
	case has(cat, "file"):
		switch {
		case has(typ, "creation"):
			return ocsfFileActivity, 1
		case has(typ, "deletion"):
			return ocsfFileActivity, 4
		case has(typ, "change"):
			return ocsfFileActivity, 3
		}
		return ocsfFileActivity, ocsfOther
	case has(cat, "process"):
		if has(typ, "start") {
			return ocsfProcessActivity, 1
		}
		if has(typ, "end") {
			return ocsfProcessActivity, 2
		}
		return ocsfProcessActivity, ocsfOther
	}
	return ocsfBaseEvent, ocsfOther
}
