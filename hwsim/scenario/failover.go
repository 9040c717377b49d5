package scenario

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Move is how one box fared when its broker was killed: whether it came
// back online on another broker and how long after the kill (measured on
// its status page, polled every 20 ms).
type Move struct {
	Box    string
	Broker string // the broker it moved to
	After  time.Duration
	OK     bool
}

// failover kills broker i (kill -9, not restarted) and waits until every
// box whose first choice it was is online on another broker (at most a
// minute each), timing each. The timeline gets one line per box and a
// summary.
func (c *Campus) failover(ctx context.Context, i int) []Move {
	m := c.mosquittos[i]
	url := "tcp://" + m.addr
	var boxes []*Box
	for _, b := range c.Boxes {
		if b.Proc != nil && b.firstAddr == m.addr {
			boxes = append(boxes, b)
		}
	}
	sort.Slice(boxes, func(i, j int) bool { return boxes[i].ID < boxes[j].ID })
	m.proc.Kill()
	killed := time.Now()
	c.Timeline.Add(Event{Who: "chaos", Where: "broker", What: fmt.Sprintf("kill -9 %s (%s), first choice of %d boxes", m.name, url, len(boxes)), Result: "killed", OK: true})
	moves := make([]Move, len(boxes))
	var wg sync.WaitGroup
	for k, b := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			st, err := c.waitMoved(mctx, b)
			moves[k] = Move{Box: b.ID, Broker: st.Broker, After: time.Since(killed), OK: err == nil}
			result := fmt.Sprintf("online on %s after %v", st.Broker, moves[k].After.Round(time.Millisecond))
			if err != nil {
				result = err.Error()
			}
			c.Timeline.Add(Event{Who: b.ID, Where: "link", What: "fails over to the next broker", Result: result, OK: err == nil})
		}()
	}
	wg.Wait()
	n, worst := 0, time.Duration(0)
	for _, mv := range moves {
		if mv.OK {
			n++
			worst = max(worst, mv.After)
		}
	}
	c.Timeline.Add(Event{Who: "campus", Where: "brokers", What: fmt.Sprintf("%d of %d boxes moved to another broker", n, len(boxes)),
		Result: fmt.Sprintf("slowest after %v", worst.Round(time.Millisecond)), OK: n == len(boxes)})
	return moves
}

// waitMoved polls a box's status until it is online on a broker other
// than its first choice.
func (c *Campus) waitMoved(ctx context.Context, b *Box) (boxStatus, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last boxStatus
	for {
		var st boxStatus
		if err := getJSON(ctx, b.StatusURL+"/status.json", &st); err == nil {
			last = st
			if st.Online && st.Broker != "" && st.Broker != b.FirstBroker {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("box %s not online on another broker: %w (online %v, broker %q)", b.ID, ctx.Err(), last.Online, last.Broker)
		case <-tick.C:
		}
	}
}
