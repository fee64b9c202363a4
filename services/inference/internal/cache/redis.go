package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a cache shared between replicas. Errors are logged and count as misses.
type Redis struct {
	client *redis.Client
	ttl    time.Duration
	prefix string
	log    *slog.Logger
}

// NewRedis connects to url (redis://host:port/db) and checks the connection.
func NewRedis(ctx context.Context, url string, ttl time.Duration, log *slog.Logger) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(opts)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return &Redis{client: c, ttl: ttl, prefix: "bourse:inference:", log: log}, nil
}

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool) {
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if err != nil {
		if err != redis.Nil {
			r.log.Warn("response cache: redis get failed", "err", err)
		}
		return nil, false
	}
	return v, true
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, value []byte) {
	if err := r.client.Set(ctx, r.prefix+key, value, r.ttl).Err(); err != nil {
		r.log.Warn("response cache: redis set failed", "err", err)
	}
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.client.Close() }
