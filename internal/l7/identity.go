package l7

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/netintel/netintelreceiver/internal/capture"
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

// hasTCPIdentity says whether the exchange has sequence numbers to derive its ids from.
func (e *Exchange) hasTCPIdentity() bool { return e.ClientISN != 0 || e.ServerISN != 0 }

// TraceID is the exchange's trace id. For TCP it is capture.RequestIdentity's, the hash the
// kernel's consistent sampler computes too, so both keep the same requests.
func (e *Exchange) TraceID() [16]byte {
	var id [16]byte
	if e.hasTCPIdentity() {
		hi, lo, _, _ := capture.RequestIdentity(e.ClientISN, e.ServerISN, e.RequestSeq, e.StreamID)
		binary.BigEndian.PutUint64(id[:8], hi)
		binary.BigEndian.PutUint64(id[8:], lo)
		return id
	}
	h := e.identity('t')
	copy(id[:], h[:16])
	return id
}

// ClientSpanID is the id of the CLIENT span; the SERVER span's parent.
func (e *Exchange) ClientSpanID() [8]byte {
	var id [8]byte
	if e.hasTCPIdentity() {
		_, _, c, _ := capture.RequestIdentity(e.ClientISN, e.ServerISN, e.RequestSeq, e.StreamID)
		binary.BigEndian.PutUint64(id[:], c)
		return id
	}
	h := e.identity('c')
	copy(id[:], h[:8])
	return id
}

// ServerSpanID is the id of the SERVER span.
func (e *Exchange) ServerSpanID() [8]byte {
	var id [8]byte
	if e.hasTCPIdentity() {
		_, _, _, srv := capture.RequestIdentity(e.ClientISN, e.ServerISN, e.RequestSeq, e.StreamID)
		binary.BigEndian.PutUint64(id[:], srv)
		return id
	}
	h := e.identity('s')
	copy(id[:], h[:8])
	return id
}
