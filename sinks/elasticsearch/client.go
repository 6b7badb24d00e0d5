package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// newClient builds the go-elasticsearch client for cfg.
//
// The client's own retries are off (DisableRetry): by default its transport
// retries 502, 503 and 504 and network errors up to three times at once,
// without backoff, and never 429. Every retry is the Runner's instead, with
// exponential backoff and jitter, and only for the items that failed. TLS is
// set up here rather than through the client's CACert and
// CertificateFingerprint options, so that the dial timeout applies to TLS
// connections too.
func newClient(cfg Config) (*es.Client, *http.Transport, error) {
	tlsCfg, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	password, err := config.ResolveSecret(cfg.Password, cfg.PasswordFile)
	if err != nil {
		return nil, nil, fmt.Errorf("password_file: %w", err)
	}
	apiKey, err := config.ResolveSecret(cfg.APIKey, cfg.APIKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("api_key_file: %w", err)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
	c, err := es.NewClient(es.Config{
		Addresses:           cfg.Addresses,
		Username:            cfg.Username,
		Password:            password.Value(),
		APIKey:              apiKey.Value(),
		Transport:           tr,
		DisableRetry:        true,
		CompressRequestBody: cfg.Compression == CompressionGzip,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	return c, tr, nil
}

// tlsConfig trusts the CA file, or only certificates with the fingerprint,
// or (neither set) the system roots.
func tlsConfig(c TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CAFingerprint != "" {
		want, err := hex.DecodeString(strings.ReplaceAll(c.CAFingerprint, ":", ""))
		if err != nil || len(want) != sha256.Size {
			return nil, errors.New("tls.ca_fingerprint: not a hex SHA-256 fingerprint")
		}
		// Elasticsearch's own scheme (its clients' certificate_fingerprint):
		// the chain is trusted when any certificate in it has the
		// fingerprint, whatever signed it.
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, der := range raw {
				if sum := sha256.Sum256(der); bytes.Equal(sum[:], want) {
					return nil
				}
			}
			return errors.New("no certificate of the server matches tls.ca_fingerprint")
		}
	}
	return cfg, nil
}

// maxReplyBytes bounds what is read of a reply other than a bulk one.
const maxReplyBytes = 4 << 20

// reply is a response read whole.
type reply struct {
	status int
	body   []byte
}

// errorText is the reply's error for messages: the body, cut short.
func (r reply) errorText() string {
	b := r.body
	if len(b) > 512 {
		b = b[:512]
	}
	return fmt.Sprintf("HTTP %d: %s", r.status, bytes.TrimSpace(b))
}

// do performs req within timeout and reads the whole reply.
func do(ctx context.Context, client *es.Client, timeout time.Duration, req esapi.Request) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := req.Do(ctx, client)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxReplyBytes))
	if err != nil {
		return reply{}, fmt.Errorf("read reply: %w", err)
	}
	return reply{status: res.StatusCode, body: body}, nil
}
