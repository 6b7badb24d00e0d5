package registry

import (
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/file"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/terminal"
	"github.com/crowsnest-siem/crowsnest/sinks/webhook"
)

// Factories returns the factory of every sink, in a stable order. It returns
// a fresh slice, so no caller can change another's view.
func Factories() []sink.Factory {
	return []sink.Factory{
		file.NewFactory(),
		terminal.NewFactory(),
		clickhouse.NewFactory(),
		elasticsearch.NewFactory(),
		webhook.NewFactory(),
	}
}

// Lookup returns the factory of sink type typ.
func Lookup(typ string) (sink.Factory, bool) {
	for _, f := range Factories() {
		if f.Type == typ {
			return f, true
		}
	}
	return sink.Factory{}, false
}

// Types returns the type of every sink, in the order of Factories.
func Types() []string {
	fs := Factories()
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Type
	}
	return out
}
