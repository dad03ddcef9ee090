package intel

// lru is a fixed-capacity map that forgets the least recently used key when full.
// Single goroutine.
type lru[K comparable, V any] struct {
	cap     int
	items   map[K]*lruNode[K, V]
	head    lruNode[K, V] // sentinel: head.next is the most recent
	evicted uint64
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](capacity int) *lru[K, V] {
	l := &lru[K, V]{cap: capacity, items: make(map[K]*lruNode[K, V])}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (l *lru[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}

// get returns the value and marks it recently used.
func (l *lru[K, V]) get(k K) (V, bool) {
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

// peek returns the value without touching its recency.
func (l *lru[K, V]) peek(k K) (V, bool) {
	n, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	return n.val, true
}

// put inserts or replaces k, evicting the least recently used key when full.
func (l *lru[K, V]) put(k K, v V) {
	if n, ok := l.items[k]; ok {
		n.val = v
		if l.head.next != n {
			l.unlink(n)
			l.pushFront(n)
		}
		return
	}
	var n *lruNode[K, V]
	if len(l.items) >= l.cap {
		// Reuse the evicted node: a full cache under churn allocates nothing.
		n = l.head.prev
		l.unlink(n)
		delete(l.items, n.key)
		l.evicted++
		n.key, n.val = k, v
	} else {
		n = &lruNode[K, V]{key: k, val: v}
	}
	l.items[k] = n
	l.pushFront(n)
}

func (l *lru[K, V]) remove(k K) {
	if n, ok := l.items[k]; ok {
		l.unlink(n)
		delete(l.items, k)
	}
}

func (l *lru[K, V]) len() int { return len(l.items) }
