package l7

import (
	"crypto/sha256"
	"encoding/binary"
)

// TraceID, ClientSpanID and ServerSpanID derive an exchange's trace and span ids from what
// both ends of a TCP connection see identically (DESIGN §4): the two initial sequence numbers,
// the sequence number of the request's first byte and, for HTTP/2, the stream id. Two
// collectors that know nothing of each other derive the same ids for the two halves of one
// exchange, so a SERVER span's parent is the CLIENT span of the same request.
//
// UDP exchanges have no sequence numbers; their ids come from the tuple, the protocol id
// (the DNS id is carried in StreamID) and the second the request was seen.

func (e *Exchange) identity(tag byte) [32]byte {
	var b [1 + 4*4 + 2*18 + 8]byte
	b[0] = tag
	binary.BigEndian.PutUint32(b[1:], e.ClientISN)
	binary.BigEndian.PutUint32(b[5:], e.ServerISN)
	binary.BigEndian.PutUint32(b[9:], e.RequestSeq)
	binary.BigEndian.PutUint32(b[13:], e.StreamID)
	n := 17
	if e.ClientISN == 0 && e.ServerISN == 0 {
		// No TCP identity: fall back to the tuple and the second of the request.
		c := e.Client.Addr.Addr().As16()
		s := e.Server.Addr.Addr().As16()
		n += copy(b[n:], c[:])
		binary.BigEndian.PutUint16(b[n:], e.Client.Addr.Port())
		n += 2
		n += copy(b[n:], s[:])
		binary.BigEndian.PutUint16(b[n:], e.Server.Addr.Port())
		n += 2
		binary.BigEndian.PutUint64(b[n:], uint64(e.Start.Unix()))
		n += 8
	}
	return sha256.Sum256(b[:n])
}

// TraceID is the exchange's trace id.
func (e *Exchange) TraceID() [16]byte {
	h := e.identity('t')
	var id [16]byte
	copy(id[:], h[:16])
	return id
}

// ClientSpanID is the id of the CLIENT span; the SERVER span's parent.
func (e *Exchange) ClientSpanID() [8]byte {
	h := e.identity('c')
	var id [8]byte
	copy(id[:], h[:8])
	return id
}

// ServerSpanID is the id of the SERVER span.
func (e *Exchange) ServerSpanID() [8]byte {
	h := e.identity('s')
	var id [8]byte
	copy(id[:], h[:8])
	return id
}
