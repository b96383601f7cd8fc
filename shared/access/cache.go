package access

import (
	"container/list"
	"sync"
	"time"
)

// decisionCache remembers access decisions until they expire, up to a
// number of entries; past it, the least recently used entry makes room, so
// that a flood of distinct tokens costs bounded memory.
type decisionCache struct {
	mu      sync.Mutex
	size    int
	order   *list.List // of *cacheEntry, most recently used first
	entries map[cacheKey]*list.Element
}

type cacheEntry struct {
	key      cacheKey
	decision error // nil: granted
	expires  time.Time
}

func newDecisionCache(size int) *decisionCache {
	return &decisionCache{size: size, order: list.New(), entries: make(map[cacheKey]*list.Element, size)}
}

// decision is a remembered answer: a nil err grants access.
type decision struct{ err error }

// get returns the decision for key when one is remembered and not expired
// at now.
func (c *decisionCache) get(key cacheKey, now time.Time) (decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return decision{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return decision{}, false
	}
	c.order.MoveToFront(el)
	return decision{e.decision}, true
}

// put remembers decision for key until expires.
func (c *decisionCache) put(key cacheKey, decision error, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.decision, e.expires = decision, expires
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, decision: decision, expires: expires})
}

// len returns the number of entries, expired ones included.
func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// keys returns the keys of the entries, for tests to inspect.
func (c *decisionCache) keys() []cacheKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]cacheKey, 0, len(c.entries))
	for k := range c.entries {
		out = append(out, k)
	}
	return out
}
