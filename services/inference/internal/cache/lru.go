package cache

import (
	"container/list"
	"context"
	"sync"
)

// LRU is an in-process cache bounded by the bytes it holds.
type LRU struct {
	mu       sync.Mutex
	maxBytes int
	used     int
	order    *list.List // front = most recently used
	items    map[string]*list.Element
}

type lruEntry struct {
	key   string
	value []byte
}

// NewLRU holds up to maxBytes of keys and values.
func NewLRU(maxBytes int) *LRU {
	return &LRU{maxBytes: maxBytes, order: list.New(), items: map[string]*list.Element{}}
}

// Get implements Cache.
func (c *LRU) Get(_ context.Context, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).value, true
}

// Set implements Cache. Values larger than the whole cache are not kept.
func (c *LRU) Set(_ context.Context, key string, value []byte) {
	size := len(key) + len(value)
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.used -= len(key) + len(e.Value.(*lruEntry).value)
		c.order.Remove(e)
	}
	c.items[key] = c.order.PushFront(&lruEntry{key: key, value: value})
	c.used += size
	for c.used > c.maxBytes {
		last := c.order.Back()
		ent := last.Value.(*lruEntry)
		c.order.Remove(last)
		delete(c.items, ent.key)
		c.used -= len(ent.key) + len(ent.value)
	}
}

// Len is the number of cached entries.
func (c *LRU) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
