package l7

import (
	"testing"
	"unicode/utf8"
)

// Wire bytes become OTLP strings, which must be UTF-8: invalid bytes are replaced, valid text
// is left alone.
func TestSanitizeMakesWireStringsUTF8(t *testing.T) {
	x := &Exchange{
		HTTP: &HTTP{Method: "GET", Path: "/caf\xe9/\xff", Host: "h\xc3", UserAgent: "sqlmap/1.7 (\xfe)", ContentType: "text/plain; charset=utf-8", Reason: "OK"},
		GRPC: &GRPC{Service: "pkg.S\x80", Method: "M", Message: "n\xffo"},
		DNS:  &DNS{Name: "a\xff.example", CNAMEs: []string{"b\xfe.example"}},
		TLS:  &TLS{SNI: "x\xfa.example", ALPN: []string{"h2", "\xff"}},
	}
	x.sanitize()
	for _, s := range []string{x.HTTP.Path, x.HTTP.Host, x.HTTP.UserAgent, x.GRPC.Service, x.GRPC.Message, x.DNS.Name, x.DNS.CNAMEs[0], x.TLS.SNI, x.TLS.ALPN[1]} {
		if !utf8.ValidString(s) {
			t.Errorf("%q is not UTF-8", s)
		}
	}
	if x.HTTP.Path != "/caf\uFFFD/\uFFFD" || x.HTTP.ContentType != "text/plain; charset=utf-8" || x.TLS.ALPN[0] != "h2" {
		t.Errorf("sanitized %+v %+v", x.HTTP, x.TLS)
	}
}
