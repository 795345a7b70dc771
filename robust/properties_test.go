package robust

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestBackoffProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := time.Duration(rapid.Int64Range(1, int64(time.Minute)).Draw(t, "base"))
		maxD := time.Duration(rapid.Int64Range(1, int64(time.Hour)).Draw(t, "max"))
		b := Backoff{Base: base, Max: maxD}
		n := rapid.IntRange(-3, 10000).Draw(t, "n")
		u := rapid.Float64Range(0, 1).Draw(t, "u")
		bound, next := b.Bound(n), b.Bound(n+1)
		capD := max(maxD, base) // Max below Base is raised to Base
		if bound <= 0 || bound > capD {
			t.Fatalf("Bound(%d) = %v outside (0, %v]", n, bound, capD)
		}
		if next < bound {
			t.Fatalf("Bound decreases: Bound(%d)=%v > Bound(%d)=%v", n, bound, n+1, next)
		}
		if n >= 1 && next != min(capD, 2*bound) {
			t.Fatalf("Bound(%d)=%v, Bound(%d)=%v: not doubling up to the cap %v", n, bound, n+1, next, capD)
		}
		if b.Bound(1) != base {
			t.Fatalf("Bound(1) = %v, want base %v", b.Bound(1), base)
		}
		if d := b.Delay(n, u); d < 0 || d >= bound {
			t.Fatalf("Delay(%d, %v) = %v outside [0, %v)", n, u, d, bound)
		}
	})
}

// breakerModel is the breaker's specification, written plainly.
type breakerModel struct {
	threshold int
	cooldown  time.Duration
	state     BreakerState
	failures  int
	openedAt  time.Time
	probing   bool
}

func TestBreakerStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		threshold := rapid.IntRange(1, 5).Draw(t, "threshold")
		cooldown := time.Duration(rapid.IntRange(1, 10).Draw(t, "cooldown")) * time.Second
		b := &breaker{threshold: threshold, cooldown: cooldown}
		m := &breakerModel{threshold: threshold, cooldown: cooldown}
		now := time.Unix(1e9, 0)
		type admitted struct {
			t     ticket
			probe bool
			gen   int // model generation
		}
		var inflight []admitted
		modelGen := 0
		open := func() {
			m.state, m.openedAt, m.failures, m.probing = BreakerOpen, now, 0, false
			modelGen++
		}
		t.Repeat(map[string]func(*rapid.T){
			"advance": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 12).Draw(t, "secs")) * time.Second)
			},
			"allow": func(t *rapid.T) {
				tk, ok, _ := b.allow(now)
				wantOK, probe := true, false
				if m.state == BreakerOpen && !now.Before(m.openedAt.Add(m.cooldown)) {
					m.state, m.probing = BreakerHalfOpen, false
					modelGen++
				}
				switch m.state {
				case BreakerOpen:
					wantOK = false
				case BreakerHalfOpen:
					wantOK, probe = !m.probing, !m.probing
					if probe {
						m.probing = true
					}
				}
				if ok != wantOK {
					t.Fatalf("allow in %v = %v, model says %v", m.state, ok, wantOK)
				}
				if ok {
					inflight = append(inflight, admitted{tk, probe, modelGen})
				}
			},
			"finish": func(t *rapid.T) {
				if len(inflight) == 0 {
					t.Skip("nothing in flight")
				}
				i := rapid.IntRange(0, len(inflight)-1).Draw(t, "which")
				a := inflight[i]
				inflight = append(inflight[:i], inflight[i+1:]...)
				o := outcome(rapid.IntRange(0, 2).Draw(t, "outcome"))
				b.done(a.t, o, now)
				if a.gen != modelGen {
					return // stale: ignored
				}
				switch m.state {
				case BreakerClosed:
					switch o {
					case outcomeSuccess:
						m.failures = 0
					case outcomeFailure:
						m.failures++
						if m.failures >= m.threshold {
							open()
						}
					}
				case BreakerHalfOpen:
					if !a.probe {
						return
					}
					switch o {
					case outcomeSuccess:
						m.state, m.failures, m.probing = BreakerClosed, 0, false
						modelGen++
					case outcomeFailure:
						open()
					default:
						m.probing = false
					}
				}
			},
			"": func(t *rapid.T) {
				want := m.state
				if want == BreakerOpen && !now.Before(m.openedAt.Add(m.cooldown)) {
					want = BreakerHalfOpen
				}
				if got := b.current(now); got != want {
					t.Fatalf("breaker %v, model %v", got, want)
				}
			},
		})
	})
}
