package access

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Passwords are the users' passwords, by user name.
type Passwords map[string]config.Secret

// LoadPasswords reads each user's password from dir/<user>, creating the
// file (0600, the directory 0700) with a random password where it is
// missing, so that re-running keeps every password and a new user gets one.
// The files are what the sinks' password_file keys and the people using
// the accounts read; a password never appears in an argument or a log.
func LoadPasswords(dir string, users []string) (Passwords, error) {
	if dir == "" {
		return nil, errors.New("passwords: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("passwords: %w", err)
	}
	out := Passwords{}
	for _, u := range users {
		if !nameRE.MatchString(u) {
			return nil, fmt.Errorf("passwords: %q is not a user name", u)
		}
		path := filepath.Join(dir, u)
		raw, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			pw := rand.Text() // 26 base32 characters, 130 bits
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, fmt.Errorf("passwords: %w", err)
			}
			_, werr := f.WriteString(pw + "\n")
			if err := errors.Join(werr, f.Close()); err != nil {
				return nil, fmt.Errorf("passwords: write %s: %w", path, err)
			}
			out[u] = config.Secret(pw)
		case err != nil:
			return nil, fmt.Errorf("passwords: %w", err)
		default:
			pw := strings.TrimRight(string(raw), "\r\n")
			if len(pw) < 12 {
				return nil, fmt.Errorf("passwords: %s holds fewer than 12 characters", path)
			}
			if strings.ContainsAny(pw, "\r\n\x00") {
				return nil, fmt.Errorf("passwords: %s holds more than one line", path)
			}
			out[u] = config.Secret(pw)
		}
	}
	return out, nil
}
