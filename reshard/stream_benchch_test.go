package reshard

import "context"

// benchChannel gives a benchmark's applier its channels and drains them as applier.loop does, giving the
// chunks back.
func benchChannel(ctx context.Context, a *applier) {
	a.ch, a.free = make(chan []applyOp, 1024), make(chan []applyOp, 64)
	go func() {
		for {
			select {
			case ops := <-a.ch:
				clear(ops)
				select {
				case a.free <- ops[:0]:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}
