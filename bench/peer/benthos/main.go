// Command benthos is the Benthos v4 core (github.com/redpanda-data/benthos/v4,
// MIT) with only its io and pure components: the peer that
// scripts/bench-peer.sh runs on the same file as `crowsnest normalize`.
// It lives in its own module, outside go.work, so that Benthos and its
// dependencies never enter the product build or go.work.sum.
package main

import (
	"context"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
)

func main() {
	service.RunCLI(context.Background())
}
