// Package lru is a fixed-capacity map that forgets its least recently used key when full and
// counts what it forgot; it bounds every table the user-space stages keep.
package lru

import "iter"

// Cache is not safe for concurrent use: each stage owns its tables on one goroutine.
type Cache[K comparable, V any] struct {
	cap     int
	items   map[K]*node[K, V]
	head    node[K, V] // sentinel: head.next is the most recent
	evicted uint64
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next *node[K, V]
}

// New returns an empty cache holding at most capacity keys (at least one).
func New[K comparable, V any](capacity int) *Cache[K, V] {
	l := &Cache[K, V]{cap: max(capacity, 1), items: make(map[K]*node[K, V])}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}

func (l *Cache[K, V]) unlink(n *node[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (l *Cache[K, V]) pushFront(n *node[K, V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}

// Get returns the value and marks it recently used.
func (l *Cache[K, V]) Get(k K) (V, bool) {
	n, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	if l.head.next != n {
		l.unlink(n)
		l.pushFront(n)
	}
	return n.val, true
}

// Peek returns the value without touching its recency.
func (l *Cache[K, V]) Peek(k K) (V, bool) {
	n, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	return n.val, true
}

// Put inserts or replaces k, evicting the least recently used key when full.
func (l *Cache[K, V]) Put(k K, v V) {
	if n, ok := l.items[k]; ok {
		n.val = v
		if l.head.next != n {
			l.unlink(n)
			l.pushFront(n)
		}
		return
	}
	var n *node[K, V]
	if len(l.items) >= l.cap {
		// Reuse the evicted node: a full cache under churn allocates nothing.
		n = l.head.prev
		l.unlink(n)
		delete(l.items, n.key)
		l.evicted++
		n.key, n.val = k, v
	} else {
		n = &node[K, V]{key: k, val: v}
	}
	l.items[k] = n
	l.pushFront(n)
}

// Remove forgets k (not counted as an eviction).
func (l *Cache[K, V]) Remove(k K) {
	if n, ok := l.items[k]; ok {
		l.unlink(n)
		delete(l.items, k)
	}
}

// Len is the number of keys held.
func (l *Cache[K, V]) Len() int { return len(l.items) }

// Evicted is how many keys the capacity pushed out so far.
func (l *Cache[K, V]) Evicted() uint64 { return l.evicted }

// All yields every key and value, most recent first, without touching recency. The cache
// must not be changed during the iteration.
func (l *Cache[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for n := l.head.next; n != &l.head; n = n.next {
			if !yield(n.key, n.val) {
				return
			}
		}
	}
}
