package lru

import "testing"

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	l := New[int, string](2)
	l.Put(1, "a")
	l.Put(2, "b")
	if _, ok := l.Get(1); !ok { // 1 is now the most recent
		t.Fatal("1 missing")
	}
	l.Put(3, "c") // evicts 2
	if _, ok := l.Peek(2); ok {
		t.Fatal("2 was not evicted")
	}
	if v, ok := l.Peek(1); !ok || v != "a" {
		t.Fatalf("1 = %q, %v", v, ok)
	}
	if v, ok := l.Peek(3); !ok || v != "c" {
		t.Fatalf("3 = %q, %v", v, ok)
	}
	l.Put(1, "a2") // replace keeps the size
	l.Remove(3)
	if l.Len() != 1 || l.Evicted() != 1 {
		t.Fatalf("len %d evicted %d", l.Len(), l.Evicted())
	}
	if v, _ := l.Get(1); v != "a2" {
		t.Fatalf("1 = %q", v)
	}
}

func TestAllIsMostRecentFirstAndCapped(t *testing.T) {
	l := New[int, int](3)
	for i := range 5 {
		l.Put(i, i*10)
	}
	var keys []int
	for k, v := range l.All() {
		if v != k*10 {
			t.Fatalf("%d = %d", k, v)
		}
		keys = append(keys, k)
	}
	if len(keys) != 3 || keys[0] != 4 || keys[2] != 2 || l.Evicted() != 2 {
		t.Fatalf("keys %v evicted %d", keys, l.Evicted())
	}
}
