package auth

import (
	"errors"
	"fmt"
)

// ErrBadPassword means the peer proved it does not know the password. The
// caller reports it to the client as SQLSTATE 28P01.
var ErrBadPassword = errors.New("password authentication failed")

// ErrProtocol is wrapped by every error about a SCRAM message that is
// malformed, out of order or asks for something we do not support. The caller
// reports it as SQLSTATE 08P01.
var ErrProtocol = errors.New("malformed SCRAM message")

// ErrServerSignature means Postgres completed the exchange but could not prove
// that it knows our password's server key: whoever answered is not the server
// the password belongs to. It is kept apart from ErrBadPassword because our
// password is not at fault.
var ErrServerSignature = errors.New("server signature mismatch")

// ServerError is a SCRAM "e=" server-error value sent in place of the server
// signature.
type ServerError struct {
	Value string
}

func (e *ServerError) Error() string { return "SCRAM server error: " + e.Value }

// Unwrap lets errors.Is(err, ErrBadPassword) see "invalid-proof", the one
// server error that means our password was wrong.
func (e *ServerError) Unwrap() error {
	if e.Value == "invalid-proof" {
		return ErrBadPassword
	}
	return nil
}

// protoErr mirrors Postgres's "malformed SCRAM message" plus errdetail.
func protoErr(detail string) error {
	return fmt.Errorf("%w: %s", ErrProtocol, detail)
}
