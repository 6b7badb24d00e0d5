package docker

// OCSF classes this mapper emits.
const (
	ocsfProcessActivity = 1007 // System Activity
	ocsfBaseEvent       = 0    // Uncategorized

	ocsfLaunch    = 1
	ocsfTerminate = 2
	ocsfOther     = 99
)

// categorize maps an event's type and action to ECS event.category and
// event.type and the OCSF class and activity. A container is the process
// tree it runs, so its run-time events are OCSF Process Activity; what
// configures the engine (creating and removing containers, images,
// networks, volumes) has no OCSF class and is a Base Event. The table is
// the package documentation's.
//
//	type       action                                  category       type          OCSF
//	container  start, restart, exec_start              process        start         1007 Launch (1)
//	container  die, stop, exec_die                     process        end           1007 Terminate (2)
//	container  kill, oom, pause, unpause, update       process        change/info   1007 Other (99)
//	container  exec_create, exec_detach, attach,       process        info          1007 Other (99)
//	           detach, resize, top, health_status, …
//	container  create                                  configuration  creation      0 Base (99)
//	container  destroy, prune                          configuration  deletion      0 Base (99)
//	container  rename, commit, copy, export            configuration  change/access 0 Base (99)
//	image      pull, load, import                      package        installation  0 Base (99)
//	image      delete, untag, prune                    package        deletion      0 Base (99)
//	image      tag                                     package        change        0 Base (99)
//	image      push, save                              package        access        0 Base (99)
//	network    connect / disconnect                    network        start / end   0 Base (99)
//	volume     mount / unmount                         configuration  change        0 Base (99)
//	any        create / destroy, remove, prune /       configuration  creation /    0 Base (99)
//	           update, reload, enable, …                              deletion / change
func categorize(typ, action string) (category, eventType string, class, activity int32) {
	switch typ {
	case "container":
		switch action {
		case "start", "restart", "exec_start":
			return "process", "start", ocsfProcessActivity, ocsfLaunch
		case "die", "stop", "exec_die":
			return "process", "end", ocsfProcessActivity, ocsfTerminate
		case "kill", "pause", "unpause", "update":
			return "process", "change", ocsfProcessActivity, ocsfOther
		case "create":
			return "configuration", "creation", ocsfBaseEvent, ocsfOther
		case "destroy", "prune":
			return "configuration", "deletion", ocsfBaseEvent, ocsfOther
		case "rename", "commit":
			return "configuration", "change", ocsfBaseEvent, ocsfOther
		case "copy", "export", "archive-path", "extract-to-dir":
			return "configuration", "access", ocsfBaseEvent, ocsfOther
		}
		// oom, exec_create, exec_detach, attach, detach, resize, top,
		// health_status and newer actions: about the running container.
		return "process", "info", ocsfProcessActivity, ocsfOther
	case "image":
		switch action {
		case "pull", "load", "import":
			return "package", "installation", ocsfBaseEvent, ocsfOther
		case "delete", "untag", "prune":
			return "package", "deletion", ocsfBaseEvent, ocsfOther
		case "tag":
			return "package", "change", ocsfBaseEvent, ocsfOther
		}
		return "package", "access", ocsfBaseEvent, ocsfOther // push, save
	case "network":
		switch action {
		case "connect":
			return "network", "start", ocsfBaseEvent, ocsfOther
		case "disconnect":
			return "network", "end", ocsfBaseEvent, ocsfOther
		}
	case "volume":
		switch action {
		case "mount", "unmount":
			return "configuration", "change", ocsfBaseEvent, ocsfOther
		}
	}
	switch action {
	case "create":
		return "configuration", "creation", ocsfBaseEvent, ocsfOther
	case "destroy", "remove", "delete", "prune":
		return "configuration", "deletion", ocsfBaseEvent, ocsfOther
	}
	return "configuration", "change", ocsfBaseEvent, ocsfOther
}
