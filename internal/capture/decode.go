//go:build amd64 || arm64

package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/netintel/netintelreceiver/bpf"
)

// Kernel event type tags (enum event_type in bpf/c/netintel.h).
const (
	kernelEventConn  = 1
	kernelEventData  = 2
	kernelEventHTTP1 = 3
)

// Data event flags (enum data_flags).
const (
	dataTruncated = 1
	dataH2Compact = 2
	dataPaired    = 4
)

// Address families as the kernel reports them.
const (
	afInet  = 2
	afInet6 = 10
)

var (
	connEventSize   = int(unsafe.Sizeof(bpf.NetintelConnEvent{}))
	dataHeaderSize  = int(unsafe.Sizeof(bpf.NetintelDataHeader{}))
	http1HeaderSize = int(unsafe.Sizeof(bpf.NetintelHttp1Header{}))
)

var errShortRecord = errors.New("ring buffer record shorter than its event")

// decoder turns ring-buffer records into Events. Kernel timestamps are CLOCK_MONOTONIC;
// bootWall is the wall time at monotonic zero.
type decoder struct {
	bootWall time.Time
}

// decode converts one ring-buffer record. The payload is copied: raw may be reused.
func (d *decoder) decode(raw []byte) (Event, error) {
	if len(raw) == 0 {
		return Event{}, errShortRecord
	}
	switch raw[0] {
	case kernelEventConn:
		if len(raw) < connEventSize {
			return Event{}, errShortRecord
		}
		k := (*bpf.NetintelConnEvent)(unsafe.Pointer(&raw[0]))
		return Event{Conn: d.conn(k)}, nil
	case kernelEventData:
		if len(raw) < dataHeaderSize {
			return Event{}, errShortRecord
		}
		h := (*bpf.NetintelDataHeader)(unsafe.Pointer(&raw[0]))
		if int(h.PayloadLen) > len(raw)-dataHeaderSize {
			return Event{}, errShortRecord
		}
		return Event{Data: d.data(h, raw[dataHeaderSize:dataHeaderSize+int(h.PayloadLen)])}, nil
	case kernelEventHTTP1:
		if len(raw) < http1HeaderSize {
			return Event{}, errShortRecord
		}
		h := (*bpf.NetintelHttp1Header)(unsafe.Pointer(&raw[0]))
		// The record holds two slots: the request's (h.Slot bytes), then the response's
		// (h.RespSlot bytes).
		slot, rslot := int(h.Slot), int(h.RespSlot)
		if int(h.ReqLen) > slot || int(h.RespLen) > rslot || len(raw) < http1HeaderSize+slot+rslot {
			return Event{}, errShortRecord
		}
		body := raw[http1HeaderSize:]
		return Event{HTTP1: d.http1(h, body[:h.ReqLen], body[slot:slot+int(h.RespLen)])}, nil
	}
	return Event{}, fmt.Errorf("unknown kernel event type %d", raw[0])
}

func (d *decoder) time(ns uint64) time.Time { return d.bootWall.Add(time.Duration(ns)) }

func (d *decoder) conn(k *bpf.NetintelConnEvent) *ConnEvent {
	e := &ConnEvent{
		Kind:          ConnKind(k.Kind),
		Time:          d.time(k.TsNs),
		Process:       process(&k.Task),
		Socket:        socket(&k.Tuple, k.Cookie),
		Duration:      time.Duration(k.DurationNs),
		BytesSent:     k.BytesSent,
		BytesReceived: k.BytesReceived,
		Retransmits:   k.Retrans,
		SRTT:          time.Duration(k.SrttUs) * time.Microsecond,
	}
	if e.Kind == ConnClosed {
		e.LocalClosedFirst = k.LocalClosedFirst != 0
	}
	if e.Kind == ConnFailed {
		e.Errno = k.Err
		e.Reason = failureReason(k.Err)
	}
	return e
}

func (d *decoder) http1(h *bpf.NetintelHttp1Header, req, resp []byte) *HTTP1Event {
	return &HTTP1Event{
		Process:      process(&h.Task),
		Socket:       socket(&h.Tuple, h.Cookie),
		RequestTime:  d.time(h.ReqNs),
		ResponseTime: d.time(h.RespNs),
		Request:      append([]byte(nil), req...),
		RequestSize:  int(h.ReqSize),
		Response:     append([]byte(nil), resp...),
		Status:       int(h.Status),
		RouteKey:     h.Route,
		Reasons:      HTTP1Reasons(h.Reasons),
		RequestSeq:   h.ReqSeq,
		ResponseSeq:  h.RespSeq,
		ClientISN:    h.ClientIsn,
		ServerISN:    h.ServerIsn,
		SocketError:  h.SkErr,
		PeerClosed:   h.TcpState == tcpCloseWait,
		Paired:       h.Paired != 0,
	}
}

// tcpCloseWait is TCP_CLOSE_WAIT: the peer sent its FIN first.
const tcpCloseWait = 8

func (d *decoder) data(h *bpf.NetintelDataHeader, payload []byte) *DataEvent {
	return &DataEvent{
		Time:      d.time(h.TsNs),
		Process:   process(&h.Task),
		Socket:    socket(&h.Tuple, h.Cookie),
		Direction: Direction(h.Dir),
		Size:      int(h.Size),
		Payload:   append([]byte(nil), payload...),
		Truncated: h.Flags&dataTruncated != 0,
		H2Compact: h.Flags&dataH2Compact != 0,
		Paired:    h.Flags&dataPaired != 0,
		Seq:       h.Seq,
		ClientISN: h.ClientIsn,
		ServerISN: h.ServerIsn,
	}
}

// Errno values of failed connects (Linux, all architectures we build for).
const (
	errnoECONNREFUSED  = 111
	errnoETIMEDOUT     = 110
	errnoEHOSTUNREACH  = 113
	errnoENETUNREACH   = 101
	errnoECONNRESET    = 104
	errnoEADDRNOTAVAIL = 99
)

func failureReason(errno int32) FailureReason {
	switch errno {
	case errnoECONNREFUSED:
		return FailureRefused
	case errnoETIMEDOUT:
		return FailureTimedOut
	case errnoEHOSTUNREACH, errnoENETUNREACH:
		return FailureUnreachable
	case errnoECONNRESET:
		return FailureReset
	case errnoEADDRNOTAVAIL:
		return FailureAddrNotAvail
	}
	return FailureOther
}

func process(t *bpf.NetintelTaskId) Process {
	var comm [16]byte
	n := 0
	for n < len(t.Comm) && t.Comm[n] != 0 {
		comm[n] = byte(t.Comm[n])
		n++
	}
	return Process{PID: t.Tgid, TID: t.Tid, Comm: string(comm[:n]), CgroupID: t.CgroupId}
}

func socket(t *bpf.NetintelSockTuple, cookie uint64) Socket {
	return Socket{
		Cookie:    cookie,
		Transport: Transport(t.Transport),
		Local:     netip.AddrPortFrom(addr(t.Family, &t.Saddr), t.Sport),
		Remote:    netip.AddrPortFrom(addr(t.Family, &t.Daddr), t.Dport),
		Role:      Role(t.Role),
	}
}

// addr returns the address; IPv4-mapped IPv6 addresses (dual-stack sockets) become IPv4 so both
// ends of a connection name the same address.
func addr(family uint16, b *[16]uint8) netip.Addr {
	switch family {
	case afInet:
		return netip.AddrFrom4([4]byte(b[:4]))
	case afInet6:
		return netip.AddrFrom16(*b).Unmap()
	}
	return netip.Addr{}
}
