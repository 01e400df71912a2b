package twopc

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/pool"
)

// conn is a blocking connection to a server for pgshard's own few statements (never on an event loop).
type conn struct {
	nc  net.Conn
	buf []byte
}

func dial(ctx context.Context, t pool.Target) (*conn, error) {
	nc, _, err := pool.Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc}, nil
}

func (c *conn) close() {
	_, _ = c.nc.Write(codec.AppendEmpty(nil, codec.Terminate))
	c.nc.Close()
}

// query runs one simple query and returns its rows in text form (NULL as ""). An error the server sent is a
// *codec.Error.
func (c *conn) query(ctx context.Context, sql string) ([][]string, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(deadline)
	}
	if _, err := c.nc.Write(codec.AppendQuery(nil, sql)); err != nil {
		return nil, err
	}
	var rows [][]string
	var qerr error
	for {
		typ, body, err := c.read()
		if err != nil {
			return nil, err
		}
		switch typ {
		case codec.DataRow:
			dr, err := codec.ParseDataRow(body)
			if err != nil {
				return nil, err
			}
			cols, err := dr.Columns(nil)
			if err != nil {
				return nil, err
			}
			row := make([]string, len(cols))
			for i, v := range cols {
				row[i] = string(v)
			}
			rows = append(rows, row)
		case codec.ErrorResponse:
			if qerr == nil {
				e, perr := codec.ParseError(body)
				if perr != nil {
					return nil, perr
				}
				qerr = e
			}
		case codec.ReadyForQuery:
			return rows, qerr
		}
	}
}

// read reads one message; body is valid until the next read.
func (c *conn) read() (byte, []byte, error) {
	var hdr [codec.HeaderLen]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := codec.MessageLen(hdr[:])
	if n < codec.HeaderLen || n > 64<<20 {
		return 0, nil, fmt.Errorf("server sent a message of %d bytes", n)
	}
	if cap(c.buf) < n-codec.HeaderLen {
		c.buf = make([]byte, n-codec.HeaderLen)
	}
	body := c.buf[:n-codec.HeaderLen]
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return 0, nil, err
	}
	return hdr[0], body, nil
}
