package decode

import "gocv.io/x/gocv"

// pipeline is the order stages run in. Fallbacks are ordered by codes read
// per millisecond, measured on every candidate stage alone on the crops of
// the real-photo-like set (photoSet: close-ups, blur, perspective, curved,
// moiré, glare, small, several codes) that the first stage did not read:
// a greedy cover, cheap stages that read many first. Under a budget a live
// camera meets the first few on every frame and the rest over the next
// frames (Decoder.next).
var pipeline = []stage{
	// Plain gozxing: most well-lit frames end here.
	{"hybrid", func(d *Decoder, g gocv.Mat) []Symbol { return read(grayOf(g), hybrid, d.readers()) }},
	{"sharpen-otsu", func(d *Decoder, g gocv.Mat) []Symbol {
		return d.derive(g, d.wide(), chain(sharpen(2, 1), otsu))
	}},
	{"otsu", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), otsu) }},
	// Blur removes screen moiré, JPEG blocking and halftone dots.
	{"blur5", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), blur(5)) }},
	// Light-on-dark codes (phone dark mode); gozxing's ALSO_INVERTED hint is ignored.
	{"invert", func(d *Decoder, g gocv.Mat) []Symbol {
		return d.derive(g, d.wide(), chain(invert, blur(3)))
	}},
	// A code turned away from the camera is narrower than it is tall (or
	// the other way round): gozxing's finder check wants square finder
	// patterns. Stretching the narrow axis undoes most of the slant.
	{"stretch-x", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), stretch(1.6, 1)) }},
	// Codes on curved surfaces: flattened for two curvatures.
	{"uncurve", func(d *Decoder, g gocv.Mat) []Symbol {
		if out := d.derive(g, d.wide(), uncurve(0.5)); len(out) > 0 {
			return out
		}
		return d.derive(g, d.wide(), uncurve(0.9))
	}},
	// Unsharp masking undoes the defocus of a phone held too close.
	{"sharpen", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), sharpen(2, 1)) }},
	{"adaptive", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), adaptive(15)) }},
	// Global threshold wins on per-pixel noise; the multi-QR reader finds
	// codes whose finder patterns confuse the single reader.
	{"global+multi", func(d *Decoder, g gocv.Mat) []Symbol {
		if out := read(grayOf(g), global, d.readers()); len(out) > 0 {
			return out
		}
		return read(grayOf(g), hybrid, readerSet{multiQR: true})
	}},
	// Upscaled and sharpened: blurred small or tilted codes.
	{"upscale-sharpen", func(d *Decoder, g gocv.Mat) []Symbol {
		if max(g.Cols(), g.Rows()) > 800 {
			return nil
		}
		return d.derive(g, d.wide(), chain(scale(2, gocv.InterpolationCubic), sharpen(4, 1)))
	}},
	// OpenCV finds the quadrangle, gozxing reads the rectified square:
	// tilted phones, perspective, codes without a quiet zone.
	{"rectify", func(d *Decoder, g gocv.Mat) []Symbol {
		m := gocv.NewMat()
		defer m.Close()
		switch long := max(g.Cols(), g.Rows()); {
		case long <= 200:
			chain(pad(0.1), scale(4, gocv.InterpolationCubic))(g, &m)
		case long <= 400:
			chain(pad(0.1), scale(2, gocv.InterpolationCubic))(g, &m)
		default:
			pad(0.05)(g, &m)
		}
		return d.rectified(m, qrOnly)
	}},
	// Small rotations change which lines the finder scans.
	{"rotate15", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), rotate(15)) }},
	// Small or low-resolution codes: upscale.
	{"upscale", func(d *Decoder, g gocv.Mat) []Symbol {
		if max(g.Cols(), g.Rows()) > 400 {
			return nil
		}
		return d.derive(g, d.wide(), scale(3, gocv.InterpolationCubic))
	}},
	{"sharpen-strong", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), sharpen(2, 2)) }},
	{"rotate-15", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), rotate(-15)) }},
	{"stretch-y", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), stretch(1, 1.6)) }},
	// Round or dotted modules.
	{"erode", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), erode(3)) }},
	{"clahe", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), clahe) }},
	// Very large frames: downscale (fewer pixels per module for the finder).
	{"downscale", func(d *Decoder, g gocv.Mat) []Symbol {
		if max(g.Cols(), g.Rows()) <= 900 {
			return nil
		}
		return d.derive(g, d.wide(), resizeTo(800))
	}},
}
