package web

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// The app icons of the manifest (home screen, splash, shortcuts) are drawn
// here at first request rather than committed as binaries: the campus
// green with a white code-like mark, safe inside the maskable circle.

// Icon is one icon the manifest lists.
type Icon struct {
	Path string // under the web root
	Size int    // square, pixels
	Fill color.RGBA
}

var (
	green  = color.RGBA{0x0b, 0x6e, 0x4f, 0xff}
	orange = color.RGBA{0xb5, 0x47, 0x08, 0xff}
)

// Icons are the icons served (and listed in manifest.json).
var Icons = []Icon{
	{"icons/icon-192.png", 192, green},
	{"icons/icon-512.png", 512, green},
	{"icons/paycode-96.png", 96, green},
	{"icons/idcode-96.png", 96, orange},
	{"icons/scan-96.png", 96, green},
}

func iconFor(name string) (Icon, bool) {
	for _, ic := range Icons {
		if ic.Path == name {
			return ic, true
		}
	}
	return Icon{}, false
}

// drawIcon draws ic as a PNG: a filled square (maskable: the mark stays
// within the middle 60 %) with a white tile holding three finder squares,
// as on a QR code.
func drawIcon(ic Icon) []byte {
	n := ic.Size
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	fill := func(x0, y0, x1, y1 int, c color.RGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	fill(0, 0, n, n, ic.Fill)
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	m := n * 2 / 10 // margin: the tile spans the middle 60 %
	fill(m, m, n-m, n-m, white)
	u := (n - 2*m) / 9 // finder pattern unit
	finder := func(x, y int) {
		fill(x, y, x+3*u, y+3*u, ic.Fill)
		fill(x+u/2, y+u/2, x+3*u-u/2, y+3*u-u/2, white)
		fill(x+u, y+u, x+2*u, y+2*u, ic.Fill)
	}
	in := m + u
	finder(in, in)
	finder(n-in-3*u, in)
	finder(in, n-in-3*u)
	fill(n-in-2*u, n-in-2*u, n-in-u, n-in-u, ic.Fill)
	var b bytes.Buffer
	png.Encode(&b, img) // writing to memory cannot fail
	return b.Bytes()
}
