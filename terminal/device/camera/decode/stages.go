package decode

import "gocv.io/x/gocv"

// pipeline is the order stages run in. It was chosen by measuring every
// candidate stage alone on zxing-cpp's sample sets (see the package doc)
// and keeping a greedy cover, cheapest and most common cases first, then
// stages that matter for phone screens held close to a camera (moiré blur,
// dark mode, tilt).
var pipeline = []stage{
	// Plain gozxing: most well-lit frames end here (~1 ms at 640×480).
	{"hybrid", func(d *Decoder, g gocv.Mat) []Symbol { return read(grayOf(g), hybrid, d.readers()) }},
	// Global threshold wins on per-pixel noise; the multi-QR reader finds
	// codes whose finder patterns confuse the single reader.
	{"global+multi", func(d *Decoder, g gocv.Mat) []Symbol {
		if out := read(grayOf(g), global, d.readers()); len(out) > 0 {
			return out
		}
		return read(grayOf(g), hybrid, readerSet{multiQR: true})
	}},
	// Blur removes screen moiré, JPEG blocking and halftone dots.
	{"blur5", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), blur(5)) }},
	// Light-on-dark codes (phone dark mode); gozxing's ALSO_INVERTED hint is ignored.
	{"invert", func(d *Decoder, g gocv.Mat) []Symbol {
		return d.derive(g, d.wide(), chain(invert, blur(3)))
	}},
	// OpenCV finds the quadrangle, gozxing reads the rectified square:
	// tilted phones, perspective, codes without a quiet zone.
	{"rectify", func(d *Decoder, g gocv.Mat) []Symbol {
		m := gocv.NewMat()
		defer m.Close()
		if max(g.Cols(), g.Rows()) <= 600 {
			chain(pad(0.1), scale(2, gocv.InterpolationCubic))(g, &m)
		} else {
			pad(0.05)(g, &m)
		}
		return d.rectified(m, qrOnly, false)
	}},
	// Small or low-resolution codes: upscale.
	{"upscale", func(d *Decoder, g gocv.Mat) []Symbol {
		if max(g.Cols(), g.Rows()) > 400 {
			return nil
		}
		return d.derive(g, d.wide(), scale(3, gocv.InterpolationCubic))
	}},
	// Very large frames: downscale (fewer pixels per module for the finder).
	{"downscale", func(d *Decoder, g gocv.Mat) []Symbol {
		if max(g.Cols(), g.Rows()) <= 900 {
			return nil
		}
		return d.derive(g, d.wide(), resizeTo(800))
	}},
	{"otsu", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), otsu) }},
	{"clahe", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), clahe) }},
	// Round or dotted modules.
	{"erode", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), erode(3)) }},
	{"rectify-inverted", func(d *Decoder, g gocv.Mat) []Symbol {
		m := gocv.NewMat()
		defer m.Close()
		chain(invert, pad(0.05))(g, &m)
		return d.rectified(m, qrOnly, false)
	}},
	// Small rotations change which lines the finder scans.
	{"rotate15", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), rotate(15)) }},
	{"rotate-15", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), rotate(-15)) }},
}
