package intel

import "testing"

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	l := newLRU[int, string](2)
	l.put(1, "a")
	l.put(2, "b")
	if _, ok := l.get(1); !ok { // 1 is now the most recent
		t.Fatal("1 missing")
	}
	l.put(3, "c") // evicts 2
	if _, ok := l.peek(2); ok {
		t.Fatal("2 was not evicted")
	}
	if v, ok := l.peek(1); !ok || v != "a" {
		t.Fatalf("1 = %q, %v", v, ok)
	}
	if v, ok := l.peek(3); !ok || v != "c" {
		t.Fatalf("3 = %q, %v", v, ok)
	}
	l.put(1, "a2") // replace keeps the size
	l.remove(3)
	if l.len() != 1 || l.evicted != 1 {
		t.Fatalf("len %d evicted %d", l.len(), l.evicted)
	}
	if v, _ := l.get(1); v != "a2" {
		t.Fatalf("1 = %q", v)
	}
}
