package authz

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// readBuffer is the size of the buffer in front of a broker connection.
const readBuffer = 64 << 10

// dial opens the connection to one broker for paho, with a read buffer in
// front of a plain one. paho reads a packet's header a byte at a time
// and then its body, straight from the connection: three or four read
// calls per packet, about seven per payment (its request and the PUBACK
// of its answer) on the one goroutine that reads for every terminal. With
// the buffer, one call takes whatever the broker has sent. A TLS
// connection buffers its records already.
func dial(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		c, err := d.Dial("tcp", u.Host)
		if err != nil {
			return nil, err
		}
		return newBufferedConn(c), nil
	case "ssl", "tls", "mqtts":
		return tls.DialWithDialer(d, "tcp", u.Host, o.TLSConfig)
	}
	return nil, fmt.Errorf("authz: broker %s: unknown scheme %q (want tcp or ssl)", u.Redacted(), u.Scheme)
}

// bufferedConn is a net.Conn whose reads go through a bufio.Reader. paho
// reads from one goroutine only.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
