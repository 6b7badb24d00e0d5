package main

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/crowsnest-siem/crowsnest/processor/detect"
)

func newRulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Work with detection rules",
	}
	cmd.AddCommand(newRulesLintCommand())
	return cmd
}

func newRulesLintCommand() *cobra.Command {
	var allowUnsupported bool
	cmd := &cobra.Command{
		Use:   "lint [PATH]...",
		Short: "Check Sigma rules: report each as ok, unsupported (with the construct and why) or invalid",
		Long: "Parses and compiles every Sigma rule in each PATH (a rule file or a directory, searched recursively)\n" +
			"exactly as the processor would, and prints one line per rule:\n\n" +
			"  ok           FILE  ID  TITLE\n" +
			"  warning      FILE  ID  what may not match as intended (the rule loads)\n" +
			"  unsupported  FILE:LINE  ID  CONSTRUCT: why (the rule does not load)\n" +
			"  invalid      FILE:LINE  ID  why (the rule does not load)\n\n" +
			"Without PATH it checks the built-in pack. The exit code is 1 when a rule does not load\n" +
			"(with --allow-unsupported, only when one is invalid).",
		RunE: func(cmd *cobra.Command, args []string) error {
			var srcs []detect.Source
			for _, p := range args {
				s, err := detect.PathSource(p)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				srcs = append(srcs, s)
			}
			if len(args) == 0 {
				srcs = append(srcs, detect.BuiltinSource())
			}
			cfg, _, err := loadConfig(configPathFromEnv(""))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			rules, problems, err := detect.Load(detect.LoadOptions{Placeholders: cfg.Processor.Detect.Placeholders}, srcs...)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			type line struct {
				ruleset, file string
				order         int
				text          string
			}
			var lines []line
			for _, r := range rules.All() {
				c := r.Sigma
				lines = append(lines, line{r.Ruleset, r.File, c.Line, fmt.Sprintf("ok           %s  %s  %s", r.File, r.ID, c.Title)})
				if r.Compiled == nil {
					continue
				}
				for _, w := range r.Compiled.Warnings {
					lines = append(lines, line{r.Ruleset, r.File, c.Line, fmt.Sprintf("warning      %s  %s  %s", r.File, r.ID, w)})
				}
			}
			var unsupported, invalid int
			for _, p := range problems {
				where := p.File
				if p.Line > 0 {
					where = fmt.Sprintf("%s:%d", p.File, p.Line)
				}
				if p.Unsupported {
					unsupported++
					lines = append(lines, line{p.Ruleset, p.File, p.Line, fmt.Sprintf("unsupported  %s  %s  %s: %v", where, p.RuleID, p.Construct, p.Err)})
				} else {
					invalid++
					lines = append(lines, line{p.Ruleset, p.File, p.Line, fmt.Sprintf("invalid      %s  %s  %v", where, p.RuleID, p.Err)})
				}
			}
			slices.SortStableFunc(lines, func(a, b line) int {
				return cmp.Or(cmp.Compare(a.ruleset, b.ruleset), cmp.Compare(a.file, b.file), cmp.Compare(a.order, b.order))
			})
			out := cmd.OutOrStdout()
			for _, l := range lines {
				fmt.Fprintln(out, l.text)
			}
			fmt.Fprintf(out, "%d rules load, %d unsupported, %d invalid\n", len(rules.All()), unsupported, invalid)
			if invalid > 0 || unsupported > 0 && !allowUnsupported {
				return &exitError{code: 1, err: fmt.Errorf("%d rules do not load", invalid+unsupported)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&allowUnsupported, "allow-unsupported", false, "exit 0 when the only problems are unsupported constructs")
	return cmd
}
