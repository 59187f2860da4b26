package edge

import (
	"context"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The rate limit classes of the route table.
const (
	ClassDefault = "default" // every route not in another class
	ClassLogin   = "login"   // register, login, refresh, logout: stricter
	ClassHolds   = "holds"   // POST /v1/holds
)

// Rate is Limit requests per Period; Limit 0 means no limit.
type Rate struct {
	Limit  int
	Period time.Duration
}

func (r Rate) String() string {
	if r.Limit == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%v", r.Limit, r.Period)
}

// DefaultRateLimits returns 100 requests a minute per client, 10 a minute
// for the login class.
func DefaultRateLimits() map[string]Rate {
	return map[string]Rate{
		ClassDefault: {Limit: 100, Period: time.Minute},
		ClassHolds:   {Limit: 100, Period: time.Minute},
		ClassLogin:   {Limit: 10, Period: time.Minute},
	}
}

// ParseRateLimits reads "default=100/1m,login=10/1m,holds=off" over the
// defaults.
func ParseRateLimits(s string) (map[string]Rate, error) {
	out := DefaultRateLimits()
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		class, spec, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || (class != ClassDefault && class != ClassLogin && class != ClassHolds) {
			return nil, fmt.Errorf("rate limit %q: want class=N/period with class default, login or holds", part)
		}
		if spec == "off" {
			out[class] = Rate{}
			continue
		}
		n, per, ok := strings.Cut(spec, "/")
		limit, err1 := strconv.Atoi(n)
		period, err2 := time.ParseDuration(per)
		if !ok || err1 != nil || err2 != nil || limit < 1 || period <= 0 {
			return nil, fmt.Errorf("rate limit %q: want N/period such as 100/1m, or off", part)
		}
		if period/time.Duration(limit) < time.Microsecond {
			return nil, fmt.Errorf("rate limit %q: at most one request per microsecond", part)
		}
		out[class] = Rate{Limit: limit, Period: period}
	}
	return out, nil
}

// Decision is a limiter's answer for one request.
type Decision struct {
	Allowed   bool
	Remaining int
	// RetryAfter is how long until a request would be allowed (denied only).
	RetryAfter time.Duration
	// Reset is how long until the full limit is available again.
	Reset time.Duration
}

// Limiter counts requests per key. Both implementations are GCRA (generic
// cell rate algorithm): each key keeps one time, the theoretical arrival
// time (TAT); a request moves it Period/Limit later and is allowed when it
// ends up at most Period ahead of now. It allows Limit requests at once,
// then one every Period/Limit.
type Limiter interface {
	Allow(ctx context.Context, key string, rate Rate) (Decision, error)
}

// gcra decides one request at now with the key's tat (zero: none) and
// returns the decision and the new tat.
func gcra(now, tat time.Time, rate Rate) (Decision, time.Time) {
	interval := rate.Period / time.Duration(rate.Limit)
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	ahead := next.Sub(now)
	if ahead > rate.Period {
		return Decision{RetryAfter: ahead - rate.Period, Reset: tat.Sub(now)}, tat
	}
	return Decision{Allowed: true, Remaining: remaining(rate, ahead, interval), Reset: ahead}, next
}

// memoryLimiter keeps the TATs in this process, in shards.
type memoryLimiter struct {
	seed   maphash.Seed
	now    func() time.Time
	shards [64]limiterShard
}

type limiterShard struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// NewMemoryLimiter returns a Limiter for one node (the embedded profile).
func NewMemoryLimiter() Limiter { return newMemoryLimiter(time.Now) }

func newMemoryLimiter(now func() time.Time) *memoryLimiter {
	l := &memoryLimiter{seed: maphash.MakeSeed(), now: now}
	for i := range l.shards {
		l.shards[i].m = make(map[string]time.Time)
	}
	return l
}

// Allow never fails.
func (l *memoryLimiter) Allow(_ context.Context, key string, rate Rate) (Decision, error) {
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	now := l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d, tat := gcra(now, sh.m[key], rate)
	if len(sh.m) > 4096 {
		// A TAT in the past is the same as none: drop those.
		for k, t := range sh.m {
			if t.Before(now) {
				delete(sh.m, k)
			}
		}
	}
	sh.m[key] = tat
	return d, nil
}

// gcraScript is GCRA in one round trip. It reads the clock of Redis, so
// every node decides against the same time. KEYS[1] the key; ARGV[1] the
// period and ARGV[2] the interval, in microseconds. It returns {allowed,
// retry after µs, reset µs}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
local ahead = nxt - now
if ahead > period then
  return {0, ahead - period, tat - now}
end
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil(ahead / 1000) + 1)
return {1, 0, ahead}
`)

// redisLimiter keeps the TATs in Redis, shared by every node.
type redisLimiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisLimiter returns a Limiter whose counts every node shares (the
// cluster profile). Keys are prefixed with "bookd:rl:".
func NewRedisLimiter(rdb redis.UniversalClient) Limiter {
	return &redisLimiter{rdb: rdb, prefix: "bookd:rl:"}
}

// Allow runs the GCRA script.
func (l *redisLimiter) Allow(ctx context.Context, key string, rate Rate) (Decision, error) {
	interval := rate.Period / time.Duration(rate.Limit)
	res, err := gcraScript.Run(ctx, l.rdb, []string{l.prefix + key}, rate.Period.Microseconds(), interval.Microseconds()).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("redis rate limit: %d values, want 3", len(res))
	}
	d := Decision{Allowed: res[0] == 1, RetryAfter: time.Duration(res[1]) * time.Microsecond, Reset: time.Duration(res[2]) * time.Microsecond}
	if d.Allowed {
		d.Remaining = remaining(rate, d.Reset, interval)
	}
	return d, nil
}

// remaining is how many more requests fit now when the TAT is ahead of
// now (the interval is rounded down, so it is capped at Limit-1).
func remaining(rate Rate, ahead, interval time.Duration) int {
	return min(rate.Limit-1, int((rate.Period-ahead)/interval))
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
