package stunx_test

import (
	"errors"
	"fmt"

	"github.com/reflow-go/reflow/internal/stunx"
)

func ExampleDecode() {
	// A Data indication with a zero-length XOR-PEER-ADDRESS: pion/stun/v2
	// would panic reading it (GHSA-34rh-wp3j-6cxc).
	pkt := []byte("\x00\x17\x00\x04\x21\x12\xa4\x42abcdefghijkl\x00\x12\x00\x00")
	fmt.Println(stunx.IsSTUN(pkt))
	_, err := stunx.Decode(pkt)
	fmt.Println(errors.Is(err, stunx.ErrMalformed))

	req, _ := stunx.NewBindingRequest()
	m, err := stunx.Decode(req.Raw)
	fmt.Println(m.Type, err)
	// Output:
	// true
	// true
	// Binding request <nil>
}
