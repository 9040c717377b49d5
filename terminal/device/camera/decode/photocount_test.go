package decode

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPhotoCounts decodes the real-photo-like set (photoSet) with plain
// gozxing, the pipeline before regions, the pipeline and, where it is
// installed, zxing-cpp's reader, logs the counts per category and holds
// the pipeline to: no misread; more images with a code read than
// zxing-cpp; every close-up read by the part of a call that always runs
// (so within the default frame budget); the payment code read beside a
// merchant's sticker; and its floors.
func TestPhotoCounts(t *testing.T) {
	havePhotoTools(t)
	photos := photoSet(t)
	plain, ours, quick, cpp := newTally(), newTally(), newTally(), newTally()
	d := newDecoder(t, Options{})
	for _, p := range photos {
		buf, err := p.m.DataPtrUint8()
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := Plain(buf, p.m.Cols(), p.m.Rows())
		plain.add(p, texts(ps))
		got, err := d.Decode(p.m)
		if err != nil {
			t.Fatal(err)
		}
		ours.add(p, texts(got))
		if len(p.want) > 0 && !matches(got, p.want[0]) {
			t.Logf("pipeline misses %s", p.name)
		}
		// A clock that jumps past the budget at every reading: only what
		// a call always runs.
		now := time.Unix(0, 0)
		q := newDecoder(t, Options{Budget: time.Millisecond, Now: func() time.Time { now = now.Add(time.Second); return now }})
		qs, _ := q.Decode(p.m)
		quick.add(p, texts(qs))
	}
	cppGot, haveCPP := zxingCPP(t, mats(photos))
	if haveCPP {
		for i, p := range photos {
			cpp.add(p, cppGot[i])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "images with ≥1 code read (misreads), %d per category:\n", perCat)
	fmt.Fprintf(&b, "%-12s %8s %8s %8s %8s\n", "category", "plain", "pipeline", "1 call", "zxingcpp")
	for _, c := range photoCats {
		fmt.Fprintf(&b, "%-12s %4d(%d)  %4d(%d)  %4d(%d)  %4d(%d)\n", c,
			plain.any[c], plain.misread[c], ours.any[c], ours.misread[c],
			quick.any[c], quick.misread[c], cpp.any[c], cpp.misread[c])
	}
	fmt.Fprintf(&b, "%-12s %7d  %7d  %7d  %7d\n", "total", plain.total(plain.any),
		ours.total(ours.any), quick.total(quick.any), cpp.total(cpp.any))
	fmt.Fprintf(&b, "multi: both codes read: pipeline %d, zxing-cpp %d of %d", ours.all["multi"], cpp.all["multi"], perCat)
	t.Log(b.String())

	if n := ours.total(ours.misread); n > 0 {
		t.Errorf("pipeline misread %d texts", n)
	}
	if haveCPP && ours.total(ours.any) <= cpp.total(cpp.any) {
		t.Errorf("pipeline read %d images, zxing-cpp %d: want more", ours.total(ours.any), cpp.total(cpp.any))
	}
	if quick.any["closeup"] != perCat {
		t.Errorf("close-ups read within one budgeted call: %d of %d", quick.any["closeup"], perCat)
	}
	if ours.all["multi"] != perCat {
		t.Errorf("multi: both codes read in %d of %d", ours.all["multi"], perCat)
	}
	for c, min := range photoFloors {
		if ours.any[c] < min {
			t.Errorf("%s: pipeline read %d, floor %d", c, ours.any[c], min)
		}
	}
}

// photoFloors are the pipeline's per-category counts when it was tuned;
// they may rise, never fall.
var photoFloors = map[string]int{
	"closeup": 8, "blur": 4, "perspective": 7, "curved": 8, "moire": 8, "glare": 8, "small": 7, "multi": 8,
}
