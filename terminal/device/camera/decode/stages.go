package decode

import "gocv.io/x/gocv"

// pipeline is the order stages run in. It was chosen by measuring every
// candidate stage alone on zxing-cpp's sample sets and on virtual-camera
// frames (see the package doc): a greedy cover with the stages that matter
// for phone screens held close to a camera (defocus, moiré, dark mode,
// tilt) first, cheaper before dearer.
var pipeline = []stage{
	// Plain gozxing: most well-lit frames end here.
	{"hybrid", func(d *Decoder, g gocv.Mat) []Symbol { return read(grayOf(g), hybrid, d.readers()) }},
	// Global threshold wins on per-pixel noise; the multi-QR reader finds
	// codes whose finder patterns confuse the single reader.
	{"global+multi", func(d *Decoder, g gocv.Mat) []Symbol {
		if out := read(grayOf(g), global, d.readers()); len(out) > 0 {
			return out
		}
		return read(grayOf(g), hybrid, readerSet{multiQR: true})
	}},
	// Unsharp masking undoes the defocus of a phone held too close.
	{"sharpen", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), sharpen(2, 1)) }},
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
	// Upscaled and sharpened: blurred small or tilted codes.
	{"upscale-sharpen", func(d *Decoder, g gocv.Mat) []Symbol {
		if max(g.Cols(), g.Rows()) > 800 {
			return nil
		}
		return d.derive(g, d.wide(), chain(scale(2, gocv.InterpolationCubic), sharpen(4, 1)))
	}},
	{"sharpen-strong", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), sharpen(2, 2)) }},
	{"adaptive", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), adaptive(15)) }},
	{"sharpen-otsu", func(d *Decoder, g gocv.Mat) []Symbol {
		return d.derive(g, d.wide(), chain(sharpen(2, 1), otsu))
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
	// Small rotations change which lines the finder scans.
	{"rotate15", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), rotate(15)) }},
	{"rotate-15", func(d *Decoder, g gocv.Mat) []Symbol { return d.derive(g, d.wide(), rotate(-15)) }},
}
