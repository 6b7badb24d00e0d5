package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowsnest-siem/crowsnest/cli/query"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

type queryFlags struct {
	configPath    string
	backend       string
	clickhouse    string
	elasticsearch string
	esNamespace   string
	json          bool
	list          bool
	limit         int
	timeout       time.Duration
	// params holds the value of each hunt parameter flag, by parameter.
	params map[string]*string
}

// Backends `crowsnest query` runs hunts on.
const (
	backendClickHouse    = "clickhouse"
	backendElasticsearch = "elasticsearch"
)

func newQueryCommand() *cobra.Command {
	f := queryFlags{params: map[string]*string{}}
	// The catalogue is embedded; a broken one is a build defect, reported
	// when the command runs rather than by failing every other command.
	catalog, catalogErr := query.Catalog()
	cmd := &cobra.Command{
		Use:   "query HUNT",
		Short: "Run a named hunt on ClickHouse or Elasticsearch and print the rows",
		Long: "Runs one of crowsnest's hunts (the analyst queries versioned with the schema) on the store\n" +
			"the sinks write — ClickHouse by default, or Elasticsearch — and prints an aligned table,\n" +
			"or JSON lines with --json. Both backends return the same columns. Times are RFC 3339 UTC.\n\n" +
			"Connection settings come from the sinks.clickhouse and sinks.elasticsearch blocks of the\n" +
			"configuration file (--config), overridden by --clickhouse URL or --elasticsearch URL.\n" +
			"--list describes every hunt and its parameters. Times take RFC 3339, a UTC date\n" +
			"(2026-11-01), now, or a time before now (-24h, -7d).",
		Example: "  crowsnest query --list\n" +
			"  crowsnest query exec_into_pod_timeline --namespace payments --from -7d\n" +
			"  crowsnest query rbac_changes_by_user --backend elasticsearch --elasticsearch http://127.0.0.1:9200 --json",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if catalogErr != nil {
				return &exitError{code: 1, err: catalogErr}
			}
			return runQuery(cmd, &f, catalog, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "configuration file (default: $CROWSNEST_CONFIG, else built-in defaults): its sinks.clickhouse / sinks.elasticsearch blocks say how to connect")
	fl.StringVar(&f.backend, "backend", "", "clickhouse or elasticsearch (default: elasticsearch when only --elasticsearch is given or only that sink is enabled in the config, else clickhouse)")
	fl.StringVar(&f.clickhouse, "clickhouse", "", "query ClickHouse at URL (replaces sinks.clickhouse.url)")
	fl.StringVar(&f.elasticsearch, "elasticsearch", "", "query Elasticsearch at URL (replaces sinks.elasticsearch.addresses)")
	fl.StringVar(&f.esNamespace, "es-namespace", "", "the data stream namespace to search (default: sinks.elasticsearch.namespace)")
	fl.BoolVar(&f.json, "json", false, "print JSON lines, one object per row, instead of a table")
	fl.BoolVar(&f.list, "list", false, "describe every hunt: what it finds, its parameters and its columns")
	fl.IntVar(&f.limit, "limit", 100, "print at most this many rows (and, for hunts with a limit parameter, ask for that many)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up on the query after this long")
	for _, p := range query.Params(catalog) {
		if p.Name == query.LimitParam {
			continue // --limit sets it
		}
		var users []string
		for _, h := range catalog {
			for _, q := range h.Params {
				if q.Name == p.Name {
					users = append(users, h.Name)
				}
			}
		}
		usage := fmt.Sprintf("hunt parameter: %s (%s)", p.Doc, strings.Join(users, ", "))
		if d, ok := query.Defaults()[p.Name]; ok {
			usage += "; default: " + d.Doc
		}
		f.params[p.Name] = fl.String(query.FlagName(p.Name), "", usage)
	}
	return cmd
}

func runQuery(cmd *cobra.Command, f *queryFlags, catalog []query.Hunt, args []string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.list {
		if len(args) > 0 {
			return &exitError{code: 2, err: errors.New("--list takes no hunt: it describes them all")}
		}
		return writeHuntList(out, catalog)
	}
	if len(args) == 0 {
		return &exitError{code: 2, err: errors.New("name a hunt: crowsnest query HUNT (crowsnest query --list describes them)")}
	}
	h, err := query.Find(catalog, args[0])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if f.limit < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--limit must be at least 1, got %d", f.limit)}
	}
	raw := map[string]string{}
	for name, v := range f.params {
		if cmd.Flags().Changed(query.FlagName(name)) {
			raw[name] = *v
		}
	}
	a, err := query.Resolve(h, raw, time.Now())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg, _, err := loadConfig(configPathFromEnv(f.configPath))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	backend, closeBackend, err := f.openBackend(cfg)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer closeBackend()
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	res, err := backend.Run(ctx, h, a, f.limit)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = fmt.Errorf("%w (unreachable: is the server running, and the URL right?)", err)
		}
		return &exitError{code: 1, err: err}
	}
	if f.json {
		err = query.WriteJSONLines(out, res)
	} else {
		err = query.WriteTable(out, res)
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	switch {
	case res.More:
		fmt.Fprintf(errOut, "crowsnest: showing the first %d rows; more match (raise --limit)\n", len(res.Rows))
	case len(res.Rows) == 0:
		fmt.Fprintln(errOut, "crowsnest: no rows")
	}
	return nil
}

// openBackend picks the backend and connects to it as the sink would.
func (f *queryFlags) openBackend(cfg Config) (query.Backend, func(), error) {
	backend := f.backend
	if backend == "" {
		backend = backendClickHouse
		onlyES := cfg.Sinks.Elasticsearch.Enabled && !cfg.Sinks.ClickHouse.Enabled
		if (f.elasticsearch != "" && f.clickhouse == "") || (f.elasticsearch == "" && f.clickhouse == "" && onlyES) {
			backend = backendElasticsearch
		}
	}
	switch backend {
	case backendClickHouse:
		c := cfg.Sinks.ClickHouse.Sink
		if f.clickhouse != "" {
			c.URL, c.Addr = f.clickhouse, nil
		}
		conn, err := clickhouse.Open(c)
		if err != nil {
			return nil, nil, fmt.Errorf("sinks.clickhouse: %w", err)
		}
		where := c.URL
		if where == "" {
			where = strings.Join(c.Addr, ",")
		}
		return query.NewClickHouse(conn, where), func() { _ = conn.Close() }, nil
	case backendElasticsearch:
		c := cfg.Sinks.Elasticsearch.Sink
		if f.elasticsearch != "" {
			c.Addresses = []string{f.elasticsearch}
		}
		if f.esNamespace != "" {
			c.Namespace = f.esNamespace
		}
		client, err := elasticsearch.Open(c)
		if err != nil {
			return nil, nil, fmt.Errorf("sinks.elasticsearch: %w", err)
		}
		events, err := elasticsearch.DataStreamName(sink.KindEvents, c.Namespace)
		if err != nil {
			return nil, nil, err
		}
		alerts, err := elasticsearch.DataStreamName(sink.KindAlerts, c.Namespace)
		if err != nil {
			return nil, nil, err
		}
		return query.NewElasticsearch(client, events, alerts, strings.Join(c.Addresses, ",")), func() {}, nil
	}
	return nil, nil, fmt.Errorf("--backend %q: want clickhouse or elasticsearch", backend)
}

// writeHuntList describes every hunt: name and title, what it finds, its
// parameters (flag, meaning, default or required) and its columns.
func writeHuntList(w io.Writer, catalog []query.Hunt) error {
	defaults := query.Defaults()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, h := range catalog {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s — %s\n", h.Name, h.Title)
		fmt.Fprintf(tw, "  %s\n", h.Description)
		fmt.Fprintln(tw, "  parameters:")
		for _, p := range h.Params {
			note := "required"
			if d, ok := defaults[p.Name]; ok {
				note = "default: " + d.Doc
			}
			if p.Name == query.LimitParam {
				note = "set by --limit"
			}
			fmt.Fprintf(tw, "    --%s\t%s\t(%s)\n", query.FlagName(p.Name), p.Doc, note)
		}
		fmt.Fprintln(tw, "  columns:")
		for _, c := range h.Columns {
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", c.Name, c.Type, c.Doc)
		}
	}
	return tw.Flush()
}
