package testserver_test

import (
	"fmt"
	"net/netip"

	"github.com/reflow-go/reflow/internal/testserver"
)

func ExampleStartTURN() {
	srv, err := testserver.StartTURN(testserver.TURNConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	fmt.Println(srv.Realm, srv.ServerName, srv.UDP.Addr(), srv.TCP.Addr(), srv.TLS.Addr())
	fmt.Println("allocations:", srv.AllocationCount())
	// Output:
	// reflow.test turn.reflow.test 127.0.0.1 127.0.0.1 127.0.0.1
	// allocations: 0
}

func ExampleStartSTUN() {
	srv, err := testserver.StartSTUN("udp6", netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	fmt.Println(srv.Addr.Addr(), srv.Requests())
	// Output: ::1 0
}
