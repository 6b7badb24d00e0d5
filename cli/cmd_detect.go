package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
)

func newDetectCommand() *cobra.Command {
	var (
		source, configPath string
		rulePaths, inputs  []string
		noBuiltin          bool
		window             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "detect (--source SOURCE [FILE] | --input SOURCE=FILE...) [--rules PATH]...",
		Short: "Normalize raw source records and run the detection rules; print alerts as JSON lines",
		Long: "Reads raw records of SOURCE, one per line, from FILE or stdin, normalizes them as the processor\n" +
			"does, runs the built-in rule pack plus every --rules PATH (a Sigma rule file or a directory of them)\n" +
			"and the config's processor.detect.rules_dirs, and prints each alert as one JSON line, exactly as\n" +
			"the sinks store it. Suppression windows run on event time, so a file gives the same alerts every time.\n" +
			"A rule that cannot load is reported on stderr (the others run); a malformed record is reported with\n" +
			"its line number and the exit code is 1 at the end.\n\n" +
			"Correlations across sources need their events together: give each file as --input SOURCE=FILE\n" +
			"(repeatable) and the records of all of them are ordered by event time before detection.\n\n" +
			"SOURCE is one of: " + strings.Join(topology.Sources(), ", ") + ".",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(inputs) > 0 && (source != "" || len(args) > 0):
				return &exitError{code: 2, err: fmt.Errorf("--input replaces --source and FILE: give one or the other")}
			case len(inputs) == 0 && source == "":
				return &exitError{code: 2, err: fmt.Errorf("--source SOURCE (or --input SOURCE=FILE) is required")}
			}
			cfg, _, err := loadConfig(configPathFromEnv(configPath))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			dcfg := cfg.Processor.Detect
			if noBuiltin {
				dcfg.Builtin = false
			}
			if cmd.Flags().Changed("suppression-window") {
				dcfg.SuppressionWindow = window
			}
			reg, err := sources.NewRegistry(cfg.Processor.Normalize)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			var merged []detect.Input
			for _, in := range inputs {
				src, file, ok := strings.Cut(in, "=")
				if !ok || file == "" {
					return &exitError{code: 2, err: fmt.Errorf("--input %q: want SOURCE=FILE", in)}
				}
				merged = append(merged, detect.Input{Source: src, Name: file})
			}
			for _, src := range append([]string{source}, sourcesOf(merged)...) {
				if _, ok := reg.Lookup(src); !ok && src != "" {
					return &exitError{code: 2, err: fmt.Errorf("source %q: not a source this build normalizes (have: %s)", src, strings.Join(reg.Sources(), ", "))}
				}
			}
			norm, err := normalize.New(cfg.Processor.Normalize, reg)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			srcs := dcfg.Sources()
			for _, p := range rulePaths {
				s, err := detect.PathSource(p)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				srcs = append(srcs, s)
			}
			if len(srcs) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("no rules: drop --no-builtin or give --rules PATH")}
			}
			rules, problems, err := detect.Load(detect.LoadOptions{Placeholders: dcfg.Placeholders}, srcs...)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			stderr := cmd.ErrOrStderr()
			for _, p := range problems {
				fmt.Fprintf(stderr, "rule not loaded: %v\n", p)
			}
			eng := detect.NewEngine(rules, dcfg)
			if len(merged) > 0 {
				for i := range merged {
					f, err := os.Open(merged[i].Name)
					if err != nil {
						return &exitError{code: 2, err: fmt.Errorf("open input: %w", err)}
					}
					defer f.Close()
					merged[i].R = f
				}
				res, err := detect.MergeLines(cmd.Context(), merged, norm, eng, cmd.OutOrStdout(), func(name string, line int, err error) {
					fmt.Fprintf(stderr, "%s:%d: %v\n", name, line, err)
				})
				return detectSummary(stderr, "inputs", res, err, len(rules.All()), eng)
			}
			in, name, closeIn, err := openInput(cmd.InOrStdin(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer closeIn()
			res, err := detect.Lines(cmd.Context(), in, norm, source, eng, cmd.OutOrStdout(), func(line int, err error) {
				fmt.Fprintf(stderr, "%s:%d: %v\n", name, line, err)
			})
			return detectSummary(stderr, name, res, err, len(rules.All()), eng)
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "source of the records: "+strings.Join(topology.Sources(), ", "))
	cmd.Flags().StringArrayVar(&rulePaths, "rules", nil, "a Sigma rule file or directory to load besides the built-in pack (repeatable)")
	cmd.Flags().BoolVar(&noBuiltin, "no-builtin", false, "do not load the built-in rule pack")
	cmd.Flags().DurationVar(&window, "suppression-window", 0, "override processor.detect.suppression_window (0 turns suppression off)")
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (its processor.normalize and processor.detect sections apply)")
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "SOURCE=FILE: one input of several, merged by event time (repeatable; replaces --source and FILE)")
	return cmd
}

func sourcesOf(inputs []detect.Input) []string {
	out := make([]string, len(inputs))
	for i, in := range inputs {
		out[i] = in.Source
	}
	return out
}

// detectSummary reports what detect did on stderr and turns it into the exit code.
func detectSummary(stderr io.Writer, name string, res detect.LinesResult, err error, rules int, eng *detect.Engine) error {
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("detect %s: %w", name, err)}
	}
	c := eng.Counters()
	fmt.Fprintf(stderr, "%s: %d records, %d events, %d rules, %d alerts (%d from correlations, %d matches suppressed)\n",
		name, res.Records, res.Events, rules, res.Alerts, c.Correlated.Load(), c.Suppressed.Load())
	if res.Rejected > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%s: %d of %d records rejected", name, res.Rejected, res.Records)}
	}
	return nil
}
