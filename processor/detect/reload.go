package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Watch reloads the rules of cfg whenever the files under cfg.RulesDirs
// differ from baseline (checked every cfg.ReloadInterval), until ctx is
// done. baseline is the Fingerprint taken before the running set was
// loaded, so a change made while it loaded is not missed. A set with an
// invalid rule, or one that cannot be read, is reported and not used: the
// previous set keeps running. Unsupported rules are reported and the others
// load, as at start-up.
func Watch(ctx context.Context, cfg Config, eng *Engine, opts LoadOptions, log *slog.Logger, baseline string) {
	if cfg.ReloadInterval <= 0 || len(cfg.RulesDirs) == 0 {
		return
	}
	last := baseline
	t := time.NewTicker(cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp, err := Fingerprint(cfg.RulesDirs)
		if err != nil {
			log.Warn("rules not reloaded: cannot read the rule directories", "error", err)
			continue
		}
		if fp == last {
			continue
		}
		last = fp
		if err := Reload(cfg, eng, opts, log); err != nil {
			log.Error("rules not reloaded; the previous set keeps running", "error", err)
		}
	}
}

// Reload loads cfg's rules now and swaps them into eng, unless a rule is
// invalid or a source cannot be read.
func Reload(cfg Config, eng *Engine, opts LoadOptions, log *slog.Logger) error {
	rules, problems, err := Load(opts, cfg.Sources()...)
	if err != nil {
		return err
	}
	var invalid []error
	for _, p := range problems {
		if p.Unsupported {
			log.Warn("rule not loaded: unsupported construct", "ruleset", p.Ruleset, "file", p.File, "rule_id", p.RuleID, "construct", p.Construct, "error", p.Err)
			continue
		}
		invalid = append(invalid, p)
	}
	if len(invalid) > 0 {
		return fmt.Errorf("%d invalid rules: %w", len(invalid), errors.Join(invalid...))
	}
	eng.Swap(rules)
	log.Info("detection rules reloaded", "rules", len(rules.All()), "not_loaded", len(problems))
	return nil
}

// Fingerprint summarizes the rule files of dirs (names, sizes, times); take
// it before loading the rules a Watch will compare against.
func Fingerprint(dirs []string) (string, error) {
	h := sha256.New()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != dir && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(path); ext != ".yml" && ext != ".yaml" {
				return nil
			}
			info, err := os.Stat(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", path, info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("rules %s: %w", dir, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
