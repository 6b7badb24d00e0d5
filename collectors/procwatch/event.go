package procwatch

// The raw record formats (FORMAT.md documents them for the processor's
// mapper). encoding/json is fine here: events come at the rate processes
// start, not at line rate.

// Event kinds.
const (
	KindCapabilities      = "capabilities"
	KindProcessExec       = "process_exec"
	KindProcessExit       = "process_exit"
	KindNetworkListen     = "network_listen"
	KindNetworkConnection = "network_connection"
	KindFileChange        = "file_change"
)

// Format is the version of the record format.
const Format = 1

type host struct {
	Hostname string `json:"hostname"`
	BootID   string `json:"boot_id,omitempty"`
}

type process struct {
	PID           int      `json:"pid"`
	PPID          int      `json:"ppid"`
	StartTime     string   `json:"start_time"`
	Name          string   `json:"name"`
	Exe           string   `json:"exe,omitempty"`
	Args          []string `json:"args,omitempty"`
	ArgsTruncated bool     `json:"args_truncated,omitempty"`
	Cwd           string   `json:"cwd,omitempty"`
	UID           *int     `json:"uid,omitempty"`
	GID           *int     `json:"gid,omitempty"`
	EUID          *int     `json:"euid,omitempty"`
	EGID          *int     `json:"egid,omitempty"`
	ContainerID   string   `json:"container_id,omitempty"`
}

type parent struct {
	PID  int    `json:"pid"`
	Name string `json:"name,omitempty"`
	Exe  string `json:"exe,omitempty"`
}

type processEvent struct {
	Kind    string   `json:"kind"`
	Format  int      `json:"format"`
	Time    string   `json:"time"`
	Host    host     `json:"host"`
	Seen    string   `json:"seen,omitempty"` // exec: "startup" (already running) or "poll"
	Process process  `json:"process"`
	Parent  *parent  `json:"parent,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

type endpoint struct {
	IP   string `json:"ip"`
	Port uint16 `json:"port"`
}

type socketInfo struct {
	Inode uint64 `json:"inode"`
	UID   int    `json:"uid"`
	State string `json:"state"`
}

type netProcess struct {
	PID         int    `json:"pid"`
	Name        string `json:"name,omitempty"`
	Exe         string `json:"exe,omitempty"`
	StartTime   string `json:"start_time,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
}

type networkEvent struct {
	Kind      string      `json:"kind"`
	Format    int         `json:"format"`
	Time      string      `json:"time"`
	Host      host        `json:"host"`
	Seen      string      `json:"seen"`
	Transport string      `json:"transport"`
	Type      string      `json:"type"` // ipv4, ipv6
	Direction string      `json:"direction,omitempty"`
	Local     endpoint    `json:"local"`
	Remote    *endpoint   `json:"remote,omitempty"`
	Socket    socketInfo  `json:"socket"`
	Process   *netProcess `json:"process,omitempty"`
}

type fileInfo struct {
	Path           string `json:"path"`
	Op             string `json:"op"` // create, write, remove, rename, chmod
	Type           string `json:"type,omitempty"`
	Size           *int64 `json:"size,omitempty"`
	Mode           string `json:"mode,omitempty"`
	UID            *int   `json:"uid,omitempty"`
	GID            *int   `json:"gid,omitempty"`
	Mtime          string `json:"mtime,omitempty"`
	SHA256         string `json:"sha256,omitempty"`
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
}

type fileEvent struct {
	Kind   string   `json:"kind"`
	Format int      `json:"format"`
	Time   string   `json:"time"`
	Host   host     `json:"host"`
	File   fileInfo `json:"file"`
	Errors []string `json:"errors,omitempty"`
}

type self struct {
	PID          int      `json:"pid"`
	UID          int      `json:"uid"`
	EUID         int      `json:"euid"`
	GID          int      `json:"gid"`
	Capabilities []string `json:"capabilities"`
}

type visibility struct {
	ProcessesVisible     int      `json:"processes_visible"`
	OtherProcesses       bool     `json:"other_processes_visible"`
	ExeReadable          string   `json:"exe_readable"` // all, some, none
	ExeUnreadableCount   int      `json:"exe_unreadable_count"`
	FDReadable           string   `json:"fd_readable"`
	FDUnreadableCount    int      `json:"fd_unreadable_count"`
	NetTables            []string `json:"net_tables"`
	NetTablesUnreadable  []string `json:"net_tables_unreadable,omitempty"`
	ExecDetection        string   `json:"exec_detection"`
	PollInterval         string   `json:"poll_interval"`
	NetlinkProcConnector string   `json:"netlink_proc_connector"`
	FileWatches          []string `json:"file_watches,omitempty"`
	FileWatchErrors      []string `json:"file_watch_errors,omitempty"`
	Limitations          []string `json:"limitations,omitempty"`
}

type capabilitiesEvent struct {
	Kind       string     `json:"kind"`
	Format     int        `json:"format"`
	Time       string     `json:"time"`
	Host       host       `json:"host"`
	Reason     string     `json:"reason"` // start, change
	Collector  self       `json:"collector"`
	Visibility visibility `json:"visibility"`
}
