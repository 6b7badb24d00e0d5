package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/crowsnest-siem/crowsnest/processor/detect/rules"
	"github.com/crowsnest-siem/crowsnest/processor/detect/sigma"
)

// RulesetBuiltin names the built-in pack in rule.ruleset.
const RulesetBuiltin = "builtin"

// A Rule is a loaded rule — a compiled detection rule, or a correlation —
// and what its alerts carry.
type Rule struct {
	// Sigma is the rule as written.
	Sigma *sigma.Rule
	// Compiled is the detection; nil for a correlation.
	Compiled *sigma.Compiled
	// Correlation is set for a correlation rule.
	Correlation *Correlation
	// Standalone: the rule raises alerts of its own. A detection rule does
	// unless every correlation referring to it sets generate: false.
	Standalone bool
	// ID is the Sigma id, or "title-<hash>" for a rule without one.
	ID         string
	Ruleset    string
	File       string
	Authors    []string
	Level      string
	Severity   int64 // event.severity and event.risk_score
	SeverityID int32 // ocsf.severity_id
	Techniques []string
	Tactics    []string
	Tags       []string

	// corrRefs are the correlations this detection rule feeds.
	corrRefs []corrRef
}

type corrRef struct {
	corr int // index in Rules.correlations
	base int // index of the rule among the correlation's bases
}

// Problem is a rule that did not load: invalid, or using a construct
// crowsnest cannot evaluate (Unsupported).
type Problem struct {
	Ruleset     string
	File        string
	Line        int
	RuleID      string
	Title       string
	Unsupported bool
	Construct   string
	Err         error
}

func (p Problem) Error() string {
	where := p.File
	if p.Line > 0 {
		where = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.RuleID != "" {
		where += " (" + p.RuleID + ")"
	}
	return where + ": " + p.Err.Error()
}

// Rules is a loaded rule set, immutable once built.
type Rules struct {
	set          *sigma.Set
	rules        []*Rule
	byC          map[*sigma.Compiled]*Rule
	correlations []*Correlation
}

// All returns every loaded rule in load order, correlations included.
func (r *Rules) All() []*Rule { return r.rules }

// Source is one place rules come from: a file system and its ruleset name.
type Source struct {
	Ruleset string
	FS      fs.FS
}

// BuiltinSource is the embedded rule pack.
func BuiltinSource() Source { return Source{Ruleset: RulesetBuiltin, FS: rules.Builtin()} }

// DirSource is a directory of rule files.
func DirSource(dir string) Source { return Source{Ruleset: dir, FS: os.DirFS(dir)} }

// Sources lists what cfg asks to load.
func (c *Config) Sources() []Source {
	var out []Source
	if c.Builtin {
		out = append(out, BuiltinSource())
	}
	for _, d := range c.RulesDirs {
		out = append(out, DirSource(d))
	}
	return out
}

// LoadOptions tune Load.
type LoadOptions struct {
	Mapping      *sigma.Mapping // nil: the default mapping
	Placeholders map[string][]string
}

type pendingCorrelation struct {
	rule          *sigma.Rule
	ruleset, file string
}

// Load reads and compiles every rule file (*.yml, *.yaml) of the sources.
// A rule that cannot load is a Problem, and the others still load; the
// error is for what makes loading impossible (an unreadable directory, a
// duplicate rule id). Correlation rules are resolved after every source is
// read, so they may refer to rules of any file by name or id.
func Load(opts LoadOptions, sources ...Source) (*Rules, []Problem, error) {
	m := opts.Mapping
	if m == nil {
		var err error
		if m, err = sigma.DefaultMapping(); err != nil {
			return nil, nil, fmt.Errorf("detection mapping: %w", err)
		}
	}
	var compiled []*sigma.Compiled
	var problems []Problem
	var pending []pendingCorrelation
	out := &Rules{byC: map[*sigma.Compiled]*Rule{}}
	ids := map[string]string{}
	for _, src := range sources {
		var files []string
		err := fs.WalkDir(src.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != "." && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if ext := path.Ext(p); ext == ".yml" || ext == ".yaml" {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("rules %s: %w", src.Ruleset, err)
		}
		slices.Sort(files)
		for _, f := range files {
			data, err := fs.ReadFile(src.FS, f)
			if err != nil {
				return nil, nil, fmt.Errorf("rules %s: read %s: %w", src.Ruleset, f, err)
			}
			parsed, err := sigma.ParseAll(data)
			if err != nil {
				problems = append(problems, problem(src.Ruleset, f, nil, err))
				continue
			}
			for _, r := range parsed {
				if r.Correlation != nil {
					pending = append(pending, pendingCorrelation{r, src.Ruleset, f})
					continue
				}
				c, err := sigma.Compile(r, sigma.Options{Mapping: m, Placeholders: opts.Placeholders})
				if err != nil {
					problems = append(problems, problem(src.Ruleset, f, r, err))
					continue
				}
				rule := newRule(r, src.Ruleset, f)
				rule.Compiled, rule.Standalone = c, true
				if prev, dup := ids[rule.ID]; dup {
					return nil, nil, fmt.Errorf("rule id %s in %s/%s is also in %s", rule.ID, src.Ruleset, f, prev)
				}
				ids[rule.ID] = src.Ruleset + "/" + f
				compiled = append(compiled, c)
				out.rules = append(out.rules, rule)
				out.byC[c] = rule
			}
		}
	}
	for _, pc := range pending {
		rule := newRule(pc.rule, pc.ruleset, pc.file)
		corr, err := newCorrelation(rule, out.rules)
		if err != nil {
			problems = append(problems, problem(pc.ruleset, pc.file, pc.rule, err))
			continue
		}
		if prev, dup := ids[rule.ID]; dup {
			return nil, nil, fmt.Errorf("rule id %s in %s/%s is also in %s", rule.ID, pc.ruleset, pc.file, prev)
		}
		ids[rule.ID] = pc.ruleset + "/" + pc.file
		rule.Correlation, rule.Standalone = corr, true
		out.rules = append(out.rules, rule)
		out.correlations = append(out.correlations, corr)
	}
	// A base rule alerts on its own unless every correlation using it says
	// generate: false (the Sigma default).
	referenced := map[*Rule]bool{}
	generate := map[*Rule]bool{}
	for i, c := range out.correlations {
		for j, b := range c.bases {
			referenced[b.rule] = true
			generate[b.rule] = generate[b.rule] || c.rule.Sigma.Correlation.Generate
			b.rule.corrRefs = append(b.rule.corrRefs, corrRef{corr: i, base: j})
		}
	}
	for r := range referenced {
		r.Standalone = generate[r]
	}
	out.set = sigma.NewSet(compiled)
	return out, problems, nil
}

func problem(ruleset, file string, r *sigma.Rule, err error) Problem {
	p := Problem{Ruleset: ruleset, File: file, Err: err}
	var ue *sigma.UnsupportedError
	if errors.As(err, &ue) {
		p.Unsupported, p.Construct = true, ue.Construct
	}
	var pe *sigma.ParseError
	if errors.As(err, &pe) {
		p.Line = pe.Line
	}
	if r != nil {
		p.RuleID, p.Title = r.ID, r.Title
		if p.Line == 0 {
			p.Line = r.Line
		}
	}
	return p
}

// levels maps a Sigma level to event.severity (ECS practice, as the Falco
// mapper uses for Falco's priorities) and ocsf.severity_id.
var levels = map[string]struct {
	severity int64
	ocsf     int32
}{
	"informational": {10, 1},
	"low":           {21, 2},
	"medium":        {47, 3},
	"high":          {73, 4},
	"critical":      {99, 5},
}

// techniqueTag is an ATT&CK technique tag: attack.t1059 or attack.t1059.004.
var techniqueTag = regexp.MustCompile(`^attack\.(t\d{4}(?:\.\d{3})?)$`)

// tactics names ATT&CK tactics by their Sigma tag (dashes since Sigma v2,
// underscores before).
var tactics = map[string]string{
	"reconnaissance": "Reconnaissance", "resource-development": "Resource Development",
	"initial-access": "Initial Access", "execution": "Execution", "persistence": "Persistence",
	"privilege-escalation": "Privilege Escalation", "defense-evasion": "Defense Evasion",
	"stealth": "Stealth", "credential-access": "Credential Access", "discovery": "Discovery",
	"lateral-movement": "Lateral Movement", "collection": "Collection",
	"command-and-control": "Command and Control", "exfiltration": "Exfiltration", "impact": "Impact",
}

func newRule(r *sigma.Rule, ruleset, file string) *Rule {
	out := &Rule{Sigma: r, ID: r.ID, Ruleset: ruleset, File: file, Level: r.Level, Tags: r.Tags}
	if out.ID == "" {
		out.ID = "title-" + shortHash(r.Title)
	}
	if out.Level == "" {
		out.Level = "medium"
	}
	lv := levels[out.Level]
	out.Severity, out.SeverityID = lv.severity, lv.ocsf
	for _, a := range strings.Split(r.Author, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out.Authors = append(out.Authors, a)
		}
	}
	for _, t := range r.Tags {
		t = strings.ToLower(t)
		if m := techniqueTag.FindStringSubmatch(t); m != nil {
			out.Techniques = appendUnique(out.Techniques, strings.ToUpper(m[1]))
			continue
		}
		if name, ok := tactics[strings.ReplaceAll(strings.TrimPrefix(t, "attack."), "_", "-")]; ok && strings.HasPrefix(t, "attack.") {
			out.Tactics = appendUnique(out.Tactics, name)
		}
	}
	return out
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// PathSource is a directory of rules, or a single rule file.
func PathSource(p string) (Source, error) {
	info, err := os.Stat(p)
	if err != nil {
		return Source{}, fmt.Errorf("rules %s: %w", p, err)
	}
	if info.IsDir() {
		return DirSource(p), nil
	}
	return Source{Ruleset: p, FS: singleFile{dir: os.DirFS(filepath.Dir(p)), name: filepath.Base(p), info: info}}, nil
}

// singleFile is a file system holding one file, so a rule file given on
// the command line loads like a directory of one.
type singleFile struct {
	dir  fs.FS
	name string
	info fs.FileInfo
}

func (s singleFile) Open(name string) (fs.File, error) {
	if name != s.name && name != "." {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.dir.Open(name)
}

func (s singleFile) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return []fs.DirEntry{fs.FileInfoToDirEntry(s.info)}, nil
}
