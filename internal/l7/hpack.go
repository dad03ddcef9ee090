package l7

import (
	"errors"

	"golang.org/x/net/http2/hpack"
)

// hpackDecoder decodes HPACK header blocks (RFC 7541) for a capture that may have joined the
// connection late. x/net's hpack.Decoder stops at the first reference to a dynamic-table
// entry it never saw, losing the static-table and literal fields after it (a mid-stream
// h2load request is `:method GET` static, `:path` literal, `:authority` dynamic, in any
// order). This decoder knows which part of its table is known and carries on: a field that
// references an unknown entry is skipped and counted, every other field is decoded, and the
// entries inserted from now on line up with the peer's table again. It uses x/net's Huffman
// decoder and header-field type; only the table bookkeeping is written here, because the
// library has no notion of a partly known table.
//
// The known entries are the newest ones. Entries older than them may exist (partial) with
// unknown sizes; since the table evicts oldest first, the known entries are present exactly
// while their own sizes fit the table, whatever the unknown ones were. Once the known entries
// leave no room for even the smallest entry (32 bytes of overhead), no unknown entry can be
// left and the table is fully known again.
type hpackDecoder struct {
	entries   []hpack.HeaderField // known dynamic entries, oldest first (index 62 is the last)
	size      uint32              // sum of the known entries' sizes
	maxSize   uint32              // the table size the encoder last chose (≤ allowed)
	allowed   uint32              // what this side's SETTINGS_HEADER_TABLE_SIZE permits
	partial   bool                // entries older than the known ones may exist
	maxString int
}

const hpackEntryOverhead = 32 // RFC 7541 §4.1

var (
	errHPACKInteger   = errors.New("hpack: integer overflow or truncated integer")
	errHPACKString    = errors.New("hpack: string truncated or too long")
	errHPACKIndex     = errors.New("hpack: index out of range")
	errHPACKTableSize = errors.New("hpack: dynamic table size update above the allowed size")
)

// newHPACKDecoder returns a decoder for a connection whose start was not seen: its table may
// hold entries inserted before the capture (see fresh).
func newHPACKDecoder(allowed uint32, maxString int) *hpackDecoder {
	return &hpackDecoder{maxSize: allowed, allowed: allowed, partial: true, maxString: maxString}
}

// fresh declares that the connection's start was seen: the table began empty.
func (d *hpackDecoder) fresh() {
	if len(d.entries) == 0 {
		d.partial = false
	}
}

// forget drops every known entry: the entries inserted by bytes that were not decoded (a
// block cut by the payload limit, a malformed block) are unknown and sit in front of them.
func (d *hpackDecoder) forget() {
	d.entries = d.entries[:0]
	d.size = 0
	d.partial = true
}

// setAllowed applies the peer's SETTINGS_HEADER_TABLE_SIZE for this direction.
func (d *hpackDecoder) setAllowed(v uint32) {
	d.allowed = v
	if d.maxSize > v {
		d.resize(v)
	}
}

func (d *hpackDecoder) resize(v uint32) {
	d.maxSize = v
	d.evict()
}

func (d *hpackDecoder) evict() {
	drop := 0
	for d.size > d.maxSize && drop < len(d.entries) {
		d.size -= d.entries[drop].Size()
		drop++
	}
	if drop > 0 {
		d.entries = append(d.entries[:0], d.entries[drop:]...)
	}
	if d.partial && d.maxSize-d.size < hpackEntryOverhead {
		d.partial = false // no room left for any entry we did not see
	}
}

func (d *hpackDecoder) insert(f hpack.HeaderField) {
	sz := f.Size()
	if sz > d.maxSize {
		// An entry larger than the table empties it (RFC 7541 §4.4), unknown entries included.
		d.entries, d.size, d.partial = d.entries[:0], 0, false
		return
	}
	d.entries = append(d.entries, f)
	d.size += sz
	d.evict()
}

// field resolves an index: ok is false when it references a dynamic entry that is not known
// (err is set when the index cannot exist at all).
func (d *hpackDecoder) field(i uint64) (hpack.HeaderField, bool, error) {
	if i == 0 {
		return hpack.HeaderField{}, false, errHPACKIndex
	}
	if i <= uint64(len(hpackStatic)) {
		return hpackStatic[i-1], true, nil
	}
	di := i - uint64(len(hpackStatic)) // 1 = newest
	if di <= uint64(len(d.entries)) {
		return d.entries[uint64(len(d.entries))-di], true, nil
	}
	if d.partial && di <= uint64(d.maxSize/hpackEntryOverhead) {
		return hpack.HeaderField{}, false, nil
	}
	return hpack.HeaderField{}, false, errHPACKIndex
}

// decode emits every field of block it can resolve and reports how many it could not (fields
// referencing unknown entries). On an error the rest of the block is lost and the table is
// forgotten, since what the rest inserted is unknown.
func (d *hpackDecoder) decode(block []byte, emit func(hpack.HeaderField)) (unknown int, err error) {
	defer func() {
		if err != nil {
			d.forget()
		}
	}()
	for len(block) > 0 {
		b := block[0]
		switch {
		case b&0x80 != 0: // indexed field
			var i uint64
			if i, block, err = hpackInt(block, 7); err != nil {
				return unknown, err
			}
			f, ok, ferr := d.field(i)
			if ferr != nil {
				return unknown, ferr
			}
			if !ok {
				unknown++
				continue
			}
			emit(f)
		case b&0xe0 == 0x20: // dynamic table size update
			var v uint64
			if v, block, err = hpackInt(block, 5); err != nil {
				return unknown, err
			}
			if v > uint64(d.allowed) {
				return unknown, errHPACKTableSize
			}
			d.resize(uint32(v))
		default: // a literal: with incremental indexing (01), without (0000) or never (0001)
			indexing := b&0xc0 == 0x40
			prefix := byte(4)
			if indexing {
				prefix = 6
			}
			var ni uint64
			if ni, block, err = hpackInt(block, prefix); err != nil {
				return unknown, err
			}
			var f hpack.HeaderField
			known := true
			if ni > 0 {
				nf, ok, ferr := d.field(ni)
				if ferr != nil {
					return unknown, ferr
				}
				f.Name, known = nf.Name, ok
			} else if f.Name, block, err = d.str(block); err != nil {
				return unknown, err
			}
			if f.Value, block, err = d.str(block); err != nil {
				return unknown, err
			}
			f.Sensitive = b&0xf0 == 0x10
			if !known {
				unknown++
				if indexing {
					// An entry of unknown size now sits in front of the known ones.
					d.forget()
				}
				continue
			}
			if indexing {
				d.insert(f)
			}
			emit(f)
		}
	}
	return unknown, nil
}

// hpackInt decodes an integer with an n-bit prefix (RFC 7541 §5.1), bounded to 32 bits.
func hpackInt(p []byte, n byte) (uint64, []byte, error) {
	mask := byte(1<<n - 1)
	v := uint64(p[0] & mask)
	p = p[1:]
	if v < uint64(mask) {
		return v, p, nil
	}
	var m uint
	for i, b := range p {
		v += uint64(b&0x7f) << m
		if v > 1<<32 {
			return 0, nil, errHPACKInteger
		}
		if b&0x80 == 0 {
			return v, p[i+1:], nil
		}
		m += 7
		if m > 28 {
			return 0, nil, errHPACKInteger
		}
	}
	return 0, nil, errHPACKInteger
}

// str decodes a string literal (RFC 7541 §5.2), Huffman-coded or not.
func (d *hpackDecoder) str(p []byte) (string, []byte, error) {
	if len(p) == 0 {
		return "", nil, errHPACKString
	}
	huff := p[0]&0x80 != 0
	n, rest, err := hpackInt(p, 7)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(rest)) || d.maxString > 0 && n > uint64(d.maxString) {
		return "", nil, errHPACKString
	}
	raw := rest[:n]
	rest = rest[n:]
	if !huff {
		return string(raw), rest, nil
	}
	s, err := hpack.HuffmanDecodeToString(raw)
	if err != nil {
		return "", nil, err
	}
	if d.maxString > 0 && len(s) > d.maxString {
		return "", nil, errHPACKString
	}
	return s, rest, nil
}

// hpackStatic is the static table of RFC 7541 Appendix A.
var hpackStatic = [...]hpack.HeaderField{
	{Name: ":authority"},
	{Name: ":method", Value: "GET"},
	{Name: ":method", Value: "POST"},
	{Name: ":path", Value: "/"},
	{Name: ":path", Value: "/index.html"},
	{Name: ":scheme", Value: "http"},
	{Name: ":scheme", Value: "https"},
	{Name: ":status", Value: "200"},
	{Name: ":status", Value: "204"},
	{Name: ":status", Value: "206"},
	{Name: ":status", Value: "304"},
	{Name: ":status", Value: "400"},
	{Name: ":status", Value: "404"},
	{Name: ":status", Value: "500"},
	{Name: "accept-charset"},
	{Name: "accept-encoding", Value: "gzip, deflate"},
	{Name: "accept-language"},
	{Name: "accept-ranges"},
	{Name: "accept"},
	{Name: "access-control-allow-origin"},
	{Name: "age"},
	{Name: "allow"},
	{Name: "authorization"},
	{Name: "cache-control"},
	{Name: "content-disposition"},
	{Name: "content-encoding"},
	{Name: "content-language"},
	{Name: "content-length"},
	{Name: "content-location"},
	{Name: "content-range"},
	{Name: "content-type"},
	{Name: "cookie"},
	{Name: "date"},
	{Name: "etag"},
	{Name: "expect"},
	{Name: "expires"},
	{Name: "from"},
	{Name: "host"},
	{Name: "if-match"},
	{Name: "if-modified-since"},
	{Name: "if-none-match"},
	{Name: "if-range"},
	{Name: "if-unmodified-since"},
	{Name: "last-modified"},
	{Name: "link"},
	{Name: "location"},
	{Name: "max-forwards"},
	{Name: "proxy-authenticate"},
	{Name: "proxy-authorization"},
	{Name: "range"},
	{Name: "referer"},
	{Name: "refresh"},
	{Name: "retry-after"},
	{Name: "server"},
	{Name: "set-cookie"},
	{Name: "strict-transport-security"},
	{Name: "transfer-encoding"},
	{Name: "user-agent"},
	{Name: "vary"},
	{Name: "via"},
	{Name: "www-authenticate"},
}
