package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// FileSinkCensus counts the event ids in the file sink's files of one stream
// kind ("events" or "alerts") under dir: every line of every
// <kind>-*.jsonl file.
func FileSinkCensus(dir, kind string) (*Census, error) {
	c := NewCensus("file sink " + kind)
	files, err := filepath.Glob(filepath.Join(dir, kind+"-*.jsonl"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	for _, path := range files {
		if err := scanLines(path, func(line []byte) {
			id, err := EventID(line)
			if err != nil {
				c.Unreadable++
				c.Records++
				return
			}
			c.Add(id)
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func scanLines(path string, fn func([]byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			fn(sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
