// The test cluster's DNS server: CoreDNS with only the plugins its Corefile uses (tests/cluster/network.py),
// built the way CoreDNS documents for a custom set of plugins: its own main, the plugins imported for their
// registration, dnsserver.Directives in CoreDNS's order. The stock build compiles every plugin, cloud SDKs
// included (about 400 modules, 27 minutes cold on a loaded 2-core VM); this one compiles what runs.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
)

// The Corefile's plugins, in the order of CoreDNS's plugin.cfg (the order a query passes through them).
var directives = []string{"bind", "errors", "cache", "kubernetes", "forward"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
