package normalize

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// An ImageRef is a container image reference split into its parts, with
// Docker Hub's defaults made explicit as distribution/reference normalizes
// them: "nginx:1.27" is registry docker.io, repository library/nginx, tag 1.27.
type ImageRef struct {
	Registry   string // docker.io, registry.k8s.io, localhost:5000
	Repository string // library/nginx, kube-apiserver
	Tag        string // empty when the reference has none
	Digest     string // sha256:…, empty when the reference has none
}

// ParseImage parses an image reference as Kubernetes pod specs, container
// runtimes and Falco give it. A bare digest ("sha256:<64 hex>") yields only
// Digest; runtime prefixes ("docker-pullable://") are the caller's to strip.
func ParseImage(s string) (ImageRef, error) {
	if d, ok := bareDigest(s); ok {
		return ImageRef{Digest: d}, nil
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return ImageRef{}, fmt.Errorf("parse image reference %.200q: %w", s, err)
	}
	ref := ImageRef{Registry: reference.Domain(named), Repository: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		ref.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		ref.Digest = d.Digest().String()
	}
	return ref, nil
}

func bareDigest(s string) (string, bool) {
	const prefix = "sha256:"
	if len(s) != len(prefix)+64 || !strings.HasPrefix(s, prefix) {
		return "", false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return s, true
}

// FillImage completes img from img.Name: registry, repository, and the tag and
// digest when the mapper did not set them. A name that does not parse leaves
// img as it was; the name is kept verbatim either way. The Normalizer does
// this for every event (through a cache); mappers only set the name.
func FillImage(img *schemas.ContainerImage) {
	var c imageCache
	c.fill(img)
}

// TrustedRegistries lists where trusted images come from. Each entry is a
// registry host ("registry.k8s.io", "localhost:5000"), which trusts every
// repository on it, or a host and a repository prefix ("docker.io/library",
// "ghcr.io/crowsnest-siem/"), which trusts that repository and everything
// below it, matched at path-segment boundaries. Entries are compared with
// images as distribution/reference normalizes them, so "nginx" is
// docker.io/library/nginx and "index.docker.io" is "docker.io".
type TrustedRegistries []string

// validate reports each malformed entry; Config.Validate calls it.
func (t TrustedRegistries) validate() error {
	var errs []error
	for i, e := range t {
		if _, _, err := splitTrusted(e); err != nil {
			errs = append(errs, config.FieldError(fmt.Sprintf("[%d]", i), "%w", err))
		}
	}
	return errors.Join(errs...)
}

func splitTrusted(entry string) (host, prefix string, err error) {
	host, prefix, _ = strings.Cut(strings.TrimSuffix(entry, "/"), "/")
	switch {
	case entry == "":
		return "", "", errors.New("empty entry")
	case host != "localhost" && !strings.ContainsAny(host, ".:"):
		return "", "", fmt.Errorf("%q does not start with a registry host (a name with '.' or ':', or localhost)", entry)
	case strings.ContainsAny(entry, " @") || strings.Contains(prefix, ":"):
		return "", "", fmt.Errorf("%q is a registry or repository prefix, not an image reference (no tag or digest)", entry)
	case strings.ToLower(prefix) != prefix:
		return "", "", fmt.Errorf("%q: repository paths are lowercase", entry)
	}
	if host == "index.docker.io" {
		host = "docker.io"
	}
	return strings.ToLower(host), prefix, nil
}

// Trusts reports whether ref comes from a trusted registry or repository
// prefix. A reference without a registry (a bare digest) is never trusted.
func (t TrustedRegistries) Trusts(ref ImageRef) bool {
	if ref.Registry == "" {
		return false
	}
	for _, e := range t {
		host, prefix, err := splitTrusted(e)
		if err != nil || !strings.EqualFold(host, ref.Registry) {
			continue
		}
		if prefix == "" || ref.Repository == prefix ||
			(strings.HasPrefix(ref.Repository, prefix) && ref.Repository[len(prefix)] == '/') {
			return true
		}
	}
	return false
}

// TrustsImage parses s and reports whether it is trusted; an unparsable
// reference is not.
func (t TrustedRegistries) TrustsImage(s string) bool {
	ref, err := ParseImage(s)
	return err == nil && t.Trusts(ref)
}
