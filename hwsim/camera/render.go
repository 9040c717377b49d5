package camera

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"gocv.io/x/gocv"
)

// QRImage renders text as a QR code at error-correction level M with a
// four-module quiet zone, module pixels square, dark modules black.
func QRImage(text string, module int) (*image.Gray, error) {
	hints := map[gozxing.EncodeHintType]interface{}{
		gozxing.EncodeHintType_ERROR_CORRECTION: "M",
		gozxing.EncodeHintType_MARGIN:           4,
	}
	bm, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 0, 0, hints)
	if err != nil {
		return nil, fmt.Errorf("camera: encode QR: %w", err)
	}
	if module < 1 {
		module = 1
	}
	w, h := bm.GetWidth(), bm.GetHeight()
	img := image.NewGray(image.Rect(0, 0, w*module, h*module))
	for y := range h * module {
		for x := range w * module {
			v := uint8(255)
			if bm.Get(x/module, y/module) {
				v = 0
			}
			img.Pix[y*img.Stride+x] = v
		}
	}
	return img, nil
}

// moireScale is how much finer than the frame the phone is rendered when
// Options.Moire is set: its pixel grid then beats with the camera's.
const moireScale = 2

// phone renders the flat phone (bezel, screen, content) as a BGR Mat whose
// content spans codePx pixels. content may be nil (a blank screen). With
// grid > 0 the screen shows its pixel grid: every third row and column is
// darkened by that fraction. The caller closes the result.
func phone(content *image.RGBA, codePx int, grid float64) (gocv.Mat, error) {
	screenW := codePx * 5 / 4
	screenH := screenW * 16 / 9
	bezel := max(screenW/24, 4)
	pw, ph := screenW+2*bezel, screenH+2*bezel
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(20, 20, 20, 0), ph, pw, gocv.MatTypeCV8UC3)
	// Screens never show pure white or black to a camera.
	gocv.Rectangle(&m, image.Rect(bezel, bezel, bezel+screenW, bezel+screenH),
		color.RGBA{238, 236, 232, 0}, -1)
	if content == nil {
		return m, nil
	}
	src, err := gocv.ImageToMatRGB(content)
	if err != nil {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("camera: convert image: %w", err)
	}
	defer src.Close()
	// Fit the content into codePx × (screenH - margin), keeping aspect.
	cw, ch := src.Cols(), src.Rows()
	f := math.Min(float64(codePx)/float64(cw), float64(screenH-screenW/4)/float64(ch))
	dw, dh := max(int(float64(cw)*f), 1), max(int(float64(ch)*f), 1)
	scaled := gocv.NewMat()
	defer scaled.Close()
	interp := gocv.InterpolationNearestNeighbor // keep module edges crisp like a screen
	if f < 1 {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(src, &scaled, image.Pt(dw, dh), 0, 0, interp)
	// Screen contrast: map 0..255 to 30..238.
	gocv.AddWeighted(scaled, 208.0/255, scaled, 0, 30, &scaled)
	x0 := bezel + (screenW-dw)/2
	y0 := bezel + (screenH-dh)/2
	roi := m.Region(image.Rect(x0, y0, x0+dw, y0+dh))
	scaled.CopyTo(&roi)
	roi.Close()
	if grid > 0 {
		screenGrid(&m, image.Rect(bezel, bezel, bezel+screenW, bezel+screenH), grid)
	}
	return m, nil
}

// screenGrid darkens every third row and column of r by frac: the gaps
// between a screen's pixels, which alias into moiré on a camera sensor.
func screenGrid(m *gocv.Mat, r image.Rectangle, frac float64) {
	buf, err := m.DataPtrUint8()
	if err != nil {
		return
	}
	stride := m.Cols() * 3
	keep := 1 - frac
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := buf[y*stride : (y+1)*stride]
		for x := r.Min.X; x < r.Max.X; x++ {
			if y%3 != 0 && x%3 != 0 {
				continue
			}
			for ch := range 3 {
				row[x*3+ch] = uint8(float64(row[x*3+ch]) * keep)
			}
		}
	}
}

// frame renders one camera frame of the phone (or an empty desk when flat
// is empty) with the camera's distortions. rng drives noise and jitter.
func (c *Camera) frame(flat gocv.Mat, rng *rand.Rand) (gocv.Mat, error) {
	o := c.opts
	w, h := o.Width, o.Height
	out := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(96, 104, 110, 0), h, w, gocv.MatTypeCV8UC3)
	// A desk lit from one side: a horizontal brightness gradient.
	for x := 0; x < w; x += 16 {
		v := 80 + 50*float64(x)/float64(w)
		gocv.Rectangle(&out, image.Rect(x, 0, x+16, h), color.RGBA{uint8(v), uint8(v + 6), uint8(v + 10), 0}, -1)
	}
	if o.Poster != "" {
		if err := poster(&out, o.Poster, int(o.PosterSize*float64(h))); err != nil {
			out.Close()
			return gocv.Mat{}, err
		}
	}
	if !flat.Empty() {
		if err := c.place(flat, &out, rng); err != nil {
			out.Close()
			return gocv.Mat{}, err
		}
	}
	if o.Glare > 0 && !flat.Empty() {
		layer := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
		cx := int(float64(w) * (0.4 + 0.2*rng.Float64()))
		cy := int(float64(h) * (0.35 + 0.2*rng.Float64()))
		gocv.Ellipse(&layer, image.Pt(cx, cy), image.Pt(w/7, h/10), 30, 0, 360, color.RGBA{255, 255, 255, 0}, -1)
		gocv.GaussianBlur(layer, &layer, image.Pt(0, 0), float64(w)/20, 0, gocv.BorderDefault)
		gocv.AddWeighted(out, 1, layer, o.Glare, 0, &out)
		layer.Close()
	}
	if o.Blur > 0 {
		gocv.GaussianBlur(out, &out, image.Pt(0, 0), o.Blur, 0, gocv.BorderReplicate)
	}
	if o.Noise > 0 {
		buf := make([]byte, w*h*3)
		for i := range buf {
			buf[i] = uint8(max(0, min(255, 128+rng.NormFloat64()*o.Noise)))
		}
		n, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, buf)
		if err != nil {
			out.Close()
			return gocv.Mat{}, fmt.Errorf("camera: noise: %w", err)
		}
		gocv.AddWeighted(out, 1, n, 1, -128, &out)
		n.Close()
	}
	return out, nil
}

// place projects flat onto dst: the phone is centred, turned Tilt degrees
// about the vertical axis and Tilt/2 about the horizontal one, then
// rotated Rotate degrees in the image plane, seen by a pinhole camera.
func (c *Camera) place(flat gocv.Mat, dst *gocv.Mat, rng *rand.Rand) error {
	o := c.opts
	w, h := float64(o.Width), float64(o.Height)
	fw, fh := float64(flat.Cols()), float64(flat.Rows())
	ss := 1.0 // flat pixels per frame pixel at the centre
	if o.Moire > 0 {
		ss = moireScale
	}
	focal := 1.2 * w
	yaw := o.Tilt * math.Pi / 180
	pitch := o.Tilt / 2 * math.Pi / 180
	roll := (o.Rotate + (rng.Float64()-0.5)*0.6) * math.Pi / 180 // hand shake
	cx := w/2 + (rng.Float64()-0.5)*2
	if o.Poster != "" { // make room for the poster on the left
		cx += o.PosterSize * h / 2
	}
	cy := h/2 + (rng.Float64()-0.5)*2
	// The flat image is fh pixels tall at scale: shift the phone so the
	// code (its centre) sits at the frame centre.
	corners := [4][2]float64{{-fw / 2, -fh / 2}, {fw / 2, -fh / 2}, {fw / 2, fh / 2}, {-fw / 2, fh / 2}}
	for i := range corners {
		corners[i][0] /= ss
		corners[i][1] /= ss
	}
	var quad [4]gocv.Point2f
	for i, p := range corners {
		x, y, z := p[0], p[1], 0.0
		x, z = x*math.Cos(yaw)+z*math.Sin(yaw), -x*math.Sin(yaw)+z*math.Cos(yaw)
		y, z = y*math.Cos(pitch)-z*math.Sin(pitch), y*math.Sin(pitch)+z*math.Cos(pitch)
		u := focal * x / (focal + z)
		v := focal * y / (focal + z)
		u, v = u*math.Cos(roll)-v*math.Sin(roll), u*math.Sin(roll)+v*math.Cos(roll)
		quad[i] = gocv.Point2f{X: float32(cx + u), Y: float32(cy + v)}
	}
	src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: float32(fw), Y: 0}, {X: float32(fw), Y: float32(fh)}, {X: 0, Y: float32(fh)}})
	defer src.Close()
	dv := gocv.NewPoint2fVectorFromPoints(quad[:])
	defer dv.Close()
	m := gocv.GetPerspectiveTransform2f(src, dv)
	defer m.Close()
	gocv.WarpPerspectiveWithParams(flat, dst, m, image.Pt(o.Width, o.Height), gocv.InterpolationLinear,
		gocv.BorderTransparent, color.RGBA{})
	return nil
}

// poster draws text as a QR code printed on white paper, side px tall, in
// dst's top-left corner: sharp, matte, dark modules not quite black.
func poster(dst *gocv.Mat, text string, side int) error {
	img, err := QRImage(text, 1)
	if err != nil {
		return err
	}
	side = min(side, dst.Rows()-8, dst.Cols()-8)
	if side < img.Bounds().Dx() {
		return fmt.Errorf("camera: poster of %d px cannot hold %d modules", side, img.Bounds().Dx())
	}
	src, err := gocv.ImageGrayToMatGray(img)
	if err != nil {
		return fmt.Errorf("camera: convert poster: %w", err)
	}
	defer src.Close()
	scaled := gocv.NewMat()
	defer scaled.Close()
	gocv.Resize(src, &scaled, image.Pt(side, side), 0, 0, gocv.InterpolationNearestNeighbor)
	// Paper: 0..255 to 28..244.
	gocv.AddWeighted(scaled, 216.0/255, scaled, 0, 28, &scaled)
	bgr := gocv.NewMat()
	defer bgr.Close()
	gocv.CvtColor(scaled, &bgr, gocv.ColorGrayToBGR)
	roi := dst.Region(image.Rect(8, 8, 8+side, 8+side))
	defer roi.Close()
	bgr.CopyTo(&roi)
	return nil
}

// curve bends flat round a vertical cylinder seen from the front, the
// way a label on a cup or a curved screen looks: the middle keeps its
// width, the sides are foreshortened and, being farther away, shorter.
// amount 1 shows half the cylinder. The caller closes the result.
func curve(flat gocv.Mat, amount float64) gocv.Mat {
	fw, fh := float64(flat.Cols()), float64(flat.Rows())
	theta := amount * math.Pi / 2 // half the arc in view
	r := fw / 2 / theta
	ow := max(int(2*r*math.Sin(theta)), 1)
	d := 2 * fw // camera distance, for the depth shrink
	mapX := gocv.NewMatWithSize(int(fh), ow, gocv.MatTypeCV32F)
	mapY := gocv.NewMatWithSize(int(fh), ow, gocv.MatTypeCV32F)
	defer mapX.Close()
	defer mapY.Close()
	xs, errX := mapX.DataPtrFloat32()
	ys, errY := mapY.DataPtrFloat32()
	if errX != nil || errY != nil {
		return flat.Clone()
	}
	cy := fh / 2
	for x := range ow {
		u := (float64(x) + 0.5 - float64(ow)/2) / r // sin of the angle
		u = max(-1, min(1, u))
		phi := math.Asin(u)
		sx := fw/2 + r*phi - 0.5
		grow := (d + r*(1-math.Cos(phi))) / d // the far sides look shorter
		for y := range int(fh) {
			xs[y*ow+x] = float32(sx)
			ys[y*ow+x] = float32(cy + (float64(y)+0.5-cy)*grow - 0.5)
		}
	}
	out := gocv.NewMat()
	gocv.Remap(flat, &out, &mapX, &mapY, gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	return out
}
