package tetragon

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// process maps the event's process and its pod; it returns the exec_id and
// start_time for the natural id and the timestamp fallback.
func (m *Mapper) process(v gjson.Result, ev *schemas.Event) (execID, startTime string) {
	trunc := &ev.Crowsnest.Truncated
	p := &ev.Process
	var arguments, dockerID string
	var pod gjson.Result
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "exec_id":
			execID = v.Str
		case "pid":
			p.PID = v.Int()
		case "uid":
			if v.Type == gjson.Number {
				p.User.ID = v.Raw // the number's text: no allocation
			}
		case "cwd":
			p.WorkingDirectory = v.Str
		case "binary":
			p.Executable = v.Str
		case "arguments":
			arguments = v.Str
		case "start_time":
			startTime = v.Str
		case "parent_exec_id":
			p.Parent.EntityID = v.Str
		case "pod":
			pod = v
		case "docker":
			dockerID = v.Str
		case "user":
			p.User.Name = v.Get("name").Str
		}
		return true
	})
	p.EntityID = execID
	p.Start = normalize.ParseTime(startTime)
	p.Name = basename(p.Executable)
	if p.Executable != "" {
		p.Args = m.lim.Append(p.Args, p.Executable, trunc)
		p.Args = splitArgs(p.Args, arguments, m.lim, trunc)
		p.CommandLine = commandLine(p.Executable, arguments)
	}
	ev.User.ID, ev.User.Name = p.User.ID, p.User.Name
	ev.Related.User = m.lim.AppendUnique(ev.Related.User, p.User.Name, trunc)
	ev.Related.User = m.lim.AppendUnique(ev.Related.User, p.User.ID, trunc)
	m.pod(pod, ev)
	if ev.Container.ID == "" {
		ev.Container.ID = dockerID // the short id, when Tetragon knows no pod
	}
	return execID, startTime
}

// parent maps the immediate parent into process.parent.* and process.ppid.
func (m *Mapper) parent(v gjson.Result, ev *schemas.Event) {
	pp := &ev.Process.Parent
	var arguments string
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "exec_id":
			pp.EntityID = v.Str
		case "pid":
			pp.PID = v.Int()
		case "binary":
			pp.Executable = v.Str
		case "arguments":
			arguments = v.Str
		}
		return true
	})
	ev.Process.PPID = pp.PID
	pp.Name = basename(pp.Executable)
	if pp.Executable != "" {
		pp.CommandLine = commandLine(pp.Executable, arguments)
	}
}

// pod maps the Kubernetes pod and container the process runs in.
func (m *Mapper) pod(v gjson.Result, ev *schemas.Event) {
	if !v.IsObject() {
		return
	}
	trunc := &ev.Crowsnest.Truncated
	o := &ev.Orchestrator
	c := &ev.Container
	o.Type = "kubernetes"
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "namespace":
			o.Namespace = v.Str
		case "name":
			o.Resource.Type, o.Resource.Name = "pods", v.Str
		case "workload_kind":
			o.Resource.Parent.Type = v.Str
		case "pod_labels":
			v.ForEach(func(k, v gjson.Result) bool {
				o.Resource.Label = m.lim.Append(o.Resource.Label, k.Str+"="+v.Str, trunc)
				return true
			})
		case "container":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "id":
					c.Runtime, c.ID = splitRuntime(v.Str)
				case "name":
					c.Name = v.Str
				case "image":
					c.Image.Name = v.Get("name").Str
					if d := imageDigest(v.Get("id").Str); d != "" {
						c.Image.Hash.All = m.lim.Append(c.Image.Hash.All, d, trunc)
					}
				case "security_context":
					if priv := v.Get("privileged"); priv.Type == gjson.True || priv.Type == gjson.False {
						b := priv.Type == gjson.True
						c.SecurityContext.Privileged = &b
					}
				}
				return true
			})
		}
		return true
	})
}

// splitRuntime splits "containerd://<id>" into runtime and id.
func splitRuntime(id string) (runtime, bare string) {
	scheme, rest, ok := strings.Cut(id, "://")
	if !ok {
		return "", id
	}
	switch scheme {
	case "containerd":
		return "containerd", rest
	case "docker":
		return "docker", rest
	case "cri-o", "crio":
		return "cri-o", rest
	}
	return scheme, rest
}

// imageDigest returns the sha256:… of an image id such as
// "docker-pullable://quay.io/app@sha256:…" or "sha256:…".
func imageDigest(id string) string {
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		id = id[i+1:]
	}
	if strings.HasPrefix(id, "sha256:") {
		return id
	}
	return ""
}

func basename(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}

func commandLine(binary, arguments string) string {
	if arguments == "" {
		return binary
	}
	return binary + " " + arguments
}

// splitArgs appends Tetragon's argument string split on spaces, keeping a
// double-quoted argument (Tetragon quotes those holding spaces) whole and
// without its quotes. The parts are substrings: no allocation.
func splitArgs(dst []string, s string, lim normalize.Limits, trunc *bool) []string {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return dst
		}
		var arg string
		if s[0] == '"' {
			if end := strings.IndexByte(s[1:], '"'); end >= 0 {
				arg, s = s[1:1+end], s[2+end:]
				dst = lim.Append(dst, arg, trunc)
				continue
			}
		}
		if end := strings.IndexByte(s, ' '); end >= 0 {
			arg, s = s[:end], s[end:]
		} else {
			arg, s = s, ""
		}
		dst = lim.Append(dst, arg, trunc)
	}
}
