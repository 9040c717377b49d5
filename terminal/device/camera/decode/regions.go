package decode

import (
	"image"
	"image/color"
	"slices"
	"sort"

	"gocv.io/x/gocv"
)

// Regions: a cheap look at a thumbnail of the frame for areas that could
// hold a code — dense edges, a code's modules or bars — so that
//
//   - a frame with nothing code-like (an empty counter) ends after the
//     first stage instead of spending the budget on fallbacks;
//   - the fallbacks run on a crop of each candidate scaled to a size
//     gozxing reads well: a close-up's huge modules are scaled down (the
//     hybrid binarizer's 40-pixel window and the finder search expect
//     modules of a few pixels), a distant code's small ones up, and a
//     12-megapixel photo is never searched whole;
//   - a frame with several codes yields every one: a candidate that holds
//     no code read so far is searched even after another code was read
//     (a merchant's sharp printed QR must not hide the student's phone).
const (
	thumbSide   = 320 // long side of the thumbnail regions are found on
	edgeLevel   = 16  // morphological gradient that counts as an edge (grey levels)
	edgeDensity = 0.2 // share of edge pixels around a point of a code area
	minRegion   = 8   // shortest side of a candidate on the thumbnail (px)
	maxRegions  = 4   // candidates searched per frame, largest first
	cropSide    = 640 // long side a candidate's crop is scaled to, at most
	cropMin     = 240 // ... and at least
)

// regions returns candidate code areas of g (8-bit gray) in g's pixels,
// largest first, each padded by a margin for the quiet zone. It looks at
// two thumbnails: modules of a few pixels on the larger, a close-up's
// huge blurred modules on the smaller.
func regions(g gocv.Mat) []image.Rectangle {
	// One resize of the frame (costly on megapixels), then a cheap one.
	long := max(g.Cols(), g.Rows())
	f := min(1, float64(thumbSide)/float64(long))
	t := gocv.NewMat()
	defer t.Close()
	if f < 1 {
		gocv.Resize(g, &t, image.Point{}, f, f, gocv.InterpolationArea)
	} else {
		g.CopyTo(&t)
	}
	var out []image.Rectangle
	if t.Cols() >= 3*minRegion && t.Rows() >= 3*minRegion {
		t3 := gocv.NewMat()
		defer t3.Close()
		gocv.Resize(t, &t3, image.Point{}, 1.0/3, 1.0/3, gocv.InterpolationArea)
		out = regionsAt(t3, f*float64(t3.Cols())/float64(t.Cols()))
	}
	out = append(regionsAt(t, f), out...)
	frame := image.Rect(0, 0, g.Cols(), g.Rows())
	for i := range out {
		out[i] = out[i].Intersect(frame)
	}
	out = slices.DeleteFunc(out, func(r image.Rectangle) bool { return r.Empty() })
	// One code found on both thumbnails, or in pieces: merge candidates
	// that mostly overlap until none do.
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(out) && !merged; i++ {
			for j := i + 1; j < len(out); j++ {
				if overlap(out[i], out[j]) > 0.5 {
					out[i] = out[i].Union(out[j])
					out = append(out[:j], out[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return area(out[i]) > area(out[j]) })
	if len(out) > maxRegions {
		out = out[:maxRegions]
	}
	return out
}

// overlap is the share of the smaller of a and b that lies in both.
func overlap(a, b image.Rectangle) float64 {
	in := area(a.Intersect(b))
	return float64(in) / float64(max(1, min(area(a), area(b))))
}

// regionsAt finds candidates on t, a thumbnail of the frame at scale f,
// and returns them in frame pixels.
func regionsAt(t gocv.Mat, f float64) []image.Rectangle {
	// Sensor noise must not look like modules: smooth before the gradient.
	gocv.GaussianBlur(t, &t, image.Pt(3, 3), 0, 0, gocv.BorderReplicate)
	// A code has edges across both axes everywhere; a phone's bezel or a
	// table edge along one only: the density of the rarer of the two.
	dens := func(dx, dy int) gocv.Mat {
		d := gocv.NewMat()
		gocv.Sobel(t, &d, gocv.MatTypeCV16S, dx, dy, 3, 0.25, 0, gocv.BorderReplicate)
		gocv.ConvertScaleAbs(d, &d, 1, 0)
		gocv.Threshold(d, &d, edgeLevel, 255, gocv.ThresholdBinary)
		gocv.Blur(d, &d, image.Pt(9, 9))
		return d
	}
	gx, gy := dens(1, 0), dens(0, 1)
	defer gx.Close()
	defer gy.Close()
	grad := gocv.NewMat()
	defer grad.Close()
	gocv.Min(gx, gy, &grad)
	gocv.Threshold(grad, &grad, float32(edgeDensity*255), 255, gocv.ThresholdBinary)
	// Thin lines (a phone's bezel, a table edge) are not codes: open,
	// then close the gaps between a code's dense patches.
	k5 := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(5, 5))
	defer k5.Close()
	gocv.MorphologyEx(grad, &grad, gocv.MorphOpen, k5)
	gocv.MorphologyEx(grad, &grad, gocv.MorphClose, k5)
	cs := gocv.FindContours(grad, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer cs.Close()
	var out []image.Rectangle
	bounds := image.Rect(0, 0, int(float64(t.Cols())/f+0.5), int(float64(t.Rows())/f+0.5))
	for i := range cs.Size() {
		r := gocv.BoundingRect(cs.At(i))
		if r.Dx() < minRegion || r.Dy() < minRegion {
			continue
		}
		// Back to frame pixels, with a margin of a sixth of the side.
		r = image.Rect(int(float64(r.Min.X)/f), int(float64(r.Min.Y)/f),
			int(float64(r.Max.X)/f), int(float64(r.Max.Y)/f))
		m := max(r.Dx(), r.Dy()) / 6
		out = append(out, r.Inset(-m).Intersect(bounds))
	}
	return out
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }

// covered reports whether a hit already lies in r.
func covered(r image.Rectangle, hits []hit) bool {
	for _, h := range hits {
		for _, p := range h.pts {
			if p.In(r) {
				return true
			}
		}
	}
	return false
}

// whole reports whether searching r is searching the frame: r covers most
// of it and the frame is not large, so the fallbacks run on the frame as
// it is.
func whole(r image.Rectangle, g gocv.Mat) bool {
	return 2*area(r) >= g.Cols()*g.Rows() && max(g.Cols(), g.Rows()) <= largeFrame
}

// crop copies r out of g, with a white border when r touches the frame's
// edge (a code cut by the frame keeps no quiet zone), scaled so its long
// side lies within [cropMin, cropSide]. The caller closes the result and
// maps points back with the returned scale.
func crop(g gocv.Mat, r image.Rectangle) (gocv.Mat, float64) {
	if r = r.Intersect(image.Rect(0, 0, g.Cols(), g.Rows())); r.Empty() {
		return g.Clone(), 1
	}
	roi := g.Region(r)
	defer roi.Close()
	b := max(r.Dx(), r.Dy()) / 12
	side := func(touches bool) int {
		if touches {
			return b
		}
		return 0
	}
	padded := gocv.NewMat()
	defer padded.Close()
	gocv.CopyMakeBorder(roi, &padded, side(r.Min.Y == 0), side(r.Max.Y == g.Rows()),
		side(r.Min.X == 0), side(r.Max.X == g.Cols()), gocv.BorderConstant, color.RGBA{255, 255, 255, 255})
	long := max(padded.Cols(), padded.Rows())
	f := 1.0
	switch {
	case long > cropSide:
		f = float64(cropSide) / float64(long)
	case long < cropMin:
		f = float64(cropMin) / float64(long)
	}
	out := gocv.NewMat()
	if f == 1 {
		padded.CopyTo(&out)
		return out, 1
	}
	interp := gocv.InterpolationArea
	if f > 1 {
		interp = gocv.InterpolationCubic
	}
	gocv.Resize(padded, &out, image.Point{}, f, f, interp)
	return out, f
}
