package decode

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"campuspay/terminal/device/camera/wechat"
)

// Options configure a Decoder.
type Options struct {
	// Budget bounds the time one Decode call spends: the first stage,
	// the candidate regions and, in the first region to search, its first
	// stage and one fallback always run; further ones start only while
	// the budget lasts. Zero means no limit (every stage runs, in order).
	Budget time.Duration
	// Now is the clock the budget is measured with; nil means time.Now.
	Now func() time.Time
	// NoCode128 skips the Code128 reader (QR only).
	NoCode128 bool
	// WeChat adds OpenCV's wechat_qrcode decoder as the last stage. It
	// reads a few codes gozxing cannot but costs tens to hundreds of
	// milliseconds per frame and cannot be interrupted by the budget, so
	// it is off by default (see the package doc for measurements).
	WeChat bool
}

// Decoder runs the staged pipeline. A Decoder is not safe for concurrent
// use: it keeps an OpenCV QR detector. Close it when done.
type Decoder struct {
	opts   Options
	det    gocv.QRCodeDetector
	wechat *wechat.Detector // nil unless Options.WeChat
	stages []stage
	next   int             // fallback stage the next Decode starts with (index into stages[1:])
	prev   image.Rectangle // the region the last code was read in
	legacy bool            // decode as before regions (benchmarks' baseline)
}

// stage is one attempt: it may derive new Mats from the gray frame (and
// must close them) and returns what it decoded.
type stage struct {
	name string
	run  func(d *Decoder, g gocv.Mat) []Symbol
}

// New returns a Decoder.
func New(opts Options) (*Decoder, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Decoder{opts: opts, stages: pipeline}
	if opts.WeChat {
		w, err := wechat.New()
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		d.wechat = w
		d.stages = append(d.stages[:len(d.stages):len(d.stages)], stage{"wechat", (*Decoder).wechatStage})
	}
	d.det = gocv.NewQRCodeDetector()
	return d, nil
}

// Close releases the OpenCV detectors.
func (d *Decoder) Close() error {
	if d.wechat != nil {
		d.wechat.Close()
	}
	return d.det.Close()
}

func (d *Decoder) wechatStage(g gocv.Mat) []Symbol {
	texts, err := d.wechat.Decode(g)
	if err != nil {
		return nil
	}
	out := make([]Symbol, 0, len(texts))
	for _, t := range texts {
		out = append(out, Symbol{Text: t, Format: "QR_CODE"})
	}
	return out
}

// Stages lists the pipeline's stage names in the order they run.
func Stages() []string {
	names := make([]string, len(pipeline))
	for i, s := range pipeline {
		names[i] = s.name
	}
	return names
}

// Frames whose long side exceeds largeFrame (phone photos, HD cameras)
// meet the first stage downscaled to firstSide: reading 12 megapixels
// whole costs hundreds of milliseconds, and a close-up's modules are
// then a better size. Small codes in them are found by the regions.
const (
	largeFrame = 1280
	firstSide  = 1024
)

// Decode decodes every code it can find in m (8-bit gray, BGR or BGRA):
// several codes in view are all returned. An empty result with a nil
// error means nothing was found.
//
// The first stage (plain gozxing, on a downscaled copy of a large frame)
// always runs. Then the frame's candidate regions (see regions) that hold
// no code read so far are searched, the previous frame's successful one
// first: each region's crop, scaled to a size gozxing reads well, meets
// the first stage and then the fallback stages while the budget lasts (at
// least one fallback per call). A frame with no candidate region ends
// after the first stage. A live camera's consecutive frames look alike,
// so the next call resumes the fallbacks where this one stopped (or at
// the stage that last succeeded) and a few frames cover the whole
// pipeline. Without a budget every stage runs, in order.
func (d *Decoder) Decode(m gocv.Mat) ([]Symbol, error) {
	g, err := toGray(m)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	start := d.opts.Now()
	if d.legacy {
		return d.decodeLegacy(g, start), nil
	}
	hits := d.first(g)
	rois := regions(g)
	// The previous frame's code is most likely where it was.
	for i, r := range rois {
		if i > 0 && d.prev.Overlaps(r) {
			rois[0], rois[i] = rois[i], rois[0]
			break
		}
	}
	// Regions found but none the whole frame: the frame is the last
	// candidate (regions are a heuristic; a code they cut is read whole).
	if len(rois) > 0 && !slices.ContainsFunc(rois, func(r image.Rectangle) bool { return whole(r, g) }) {
		rois = append(rois, image.Rect(0, 0, g.Cols(), g.Rows()))
	}
	searched := 0
	for _, r := range rois {
		if covered(r, hits) {
			continue
		}
		if searched > 0 && d.spent(start) {
			break
		}
		var out []Symbol
		if whole(r, g) {
			out = d.fallbacks(g, start, searched == 0)
		} else {
			c, _ := crop(g, r)
			if out = d.stages[0].run(d, c); len(out) == 0 {
				out = d.fallbacks(c, start, searched == 0)
			}
			c.Close()
		}
		searched++
		if len(out) > 0 {
			d.prev = r
			mid := image.Pt((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2)
			for _, s := range out {
				hits = append(hits, hit{Symbol: s, pts: []image.Point{mid}})
			}
		}
	}
	out := make([]Symbol, len(hits))
	for i, h := range hits {
		out[i] = h.Symbol
	}
	return dedupe(out), nil
}

// first runs the first stage on g, or on a downscaled copy of a large
// frame, and returns the hits in g's pixels.
func (d *Decoder) first(g gocv.Mat) []hit {
	long := max(g.Cols(), g.Rows())
	if long <= largeFrame {
		return readHits(grayOf(g), hybrid, d.readers())
	}
	f := float64(firstSide) / float64(long)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(g, &small, image.Point{}, f, f, gocv.InterpolationArea)
	hits := readHits(grayOf(small), hybrid, d.readers())
	for i := range hits {
		for j, p := range hits[i].pts {
			hits[i].pts[j] = image.Pt(int(float64(p.X)/f), int(float64(p.Y)/f))
		}
	}
	return hits
}

// spent reports whether the call that started at start used its budget.
func (d *Decoder) spent(start time.Time) bool {
	return d.opts.Budget > 0 && d.opts.Now().Sub(start) >= d.opts.Budget
}

// fallbacks runs the fallback stages on g, from the cursor, while the
// budget lasts (the first one regardless when must is set), and returns
// what the first successful one read.
func (d *Decoder) fallbacks(g gocv.Mat, start time.Time, must bool) []Symbol {
	n := len(d.stages) - 1
	for i := range n {
		if (i > 0 || !must) && d.spent(start) {
			d.next = (d.next + i) % n
			return nil
		}
		k := (d.next + i) % n
		if out := d.stages[1+k].run(d, g); len(out) > 0 {
			d.next = k
			return out
		}
	}
	return nil
}

// decodeLegacy is the pipeline as it was before regions (first stage on
// the whole frame, then the fallbacks on the whole frame, stopping at the
// first stage that reads anything): the benchmarks' "before".
func (d *Decoder) decodeLegacy(g gocv.Mat, start time.Time) []Symbol {
	if out := d.stages[0].run(d, g); len(out) > 0 {
		return dedupe(out)
	}
	return dedupe(d.fallbacks(g, start, true))
}

// DecodeGray decodes an 8-bit gray buffer of width×height pixels.
func (d *Decoder) DecodeGray(buf []byte, width, height int) ([]Symbol, error) {
	if width <= 0 || height <= 0 || len(buf) < width*height {
		return nil, fmt.Errorf("decode: gray buffer %d bytes for %dx%d", len(buf), width, height)
	}
	m, err := gocv.NewMatFromBytes(height, width, gocv.MatTypeCV8U, buf[:width*height])
	if err != nil {
		return nil, fmt.Errorf("decode: wrap gray buffer: %w", err)
	}
	defer m.Close()
	return d.Decode(m)
}

// toGray returns a new continuous 8-bit single-channel Mat; the caller closes it.
func toGray(m gocv.Mat) (gocv.Mat, error) {
	if m.Empty() {
		return gocv.Mat{}, fmt.Errorf("decode: empty image")
	}
	switch m.Type() {
	case gocv.MatTypeCV8UC1:
		return m.Clone(), nil
	case gocv.MatTypeCV8UC3:
		g := gocv.NewMat()
		gocv.CvtColor(m, &g, gocv.ColorBGRToGray)
		return g, nil
	case gocv.MatTypeCV8UC4:
		g := gocv.NewMat()
		gocv.CvtColor(m, &g, gocv.ColorBGRAToGray)
		return g, nil
	}
	return gocv.Mat{}, fmt.Errorf("decode: unsupported Mat type %v", m.Type())
}

// grayOf borrows m's pixels; the result is valid only while m lives.
func grayOf(m gocv.Mat) gray {
	if !m.IsContinuous() {
		return gray{}
	}
	buf, err := m.DataPtrUint8()
	if err != nil {
		return gray{}
	}
	return gray{buf, m.Cols(), m.Rows()}
}

// The first stages run the multi-QR reader after the single one: gozxing's
// single reader misses about 2 % of perfectly drawn wallet codes (it picks a
// wrong triple among finder-pattern look-alikes in the data) and the multi
// reader reads them all (TestFirstStageReadsEveryCode). It runs only when
// the single reader found nothing.
var (
	allReaders = readerSet{qr: true, multiQR: true, code128: true}
	qrOnly     = readerSet{qr: true, multiQR: true}
)

func (d *Decoder) readers() readerSet {
	if d.opts.NoCode128 {
		return qrOnly
	}
	return allReaders
}

// wide is the reader set of fallback stages: QR with the multi-QR reader
// too. Code128 (TRY_HARDER scans many rows, the costliest reader) runs
// only in the first stages: barcodes rarely need more.
func (d *Decoder) wide() readerSet {
	return readerSet{qr: true, multiQR: true}
}

// both tries the hybrid binarizer and then the global one.
func (d *Decoder) both(m gocv.Mat, rs readerSet) []Symbol {
	g := grayOf(m)
	if out := read(g, hybrid, rs); len(out) > 0 {
		return out
	}
	return read(g, global, rs)
}

// derive applies f to a new Mat, decodes it with both binarizers and closes it.
func (d *Decoder) derive(src gocv.Mat, rs readerSet, f func(src gocv.Mat, dst *gocv.Mat)) []Symbol {
	dst := gocv.NewMat()
	defer dst.Close()
	f(src, &dst)
	if dst.Empty() {
		return nil
	}
	return d.both(dst, rs)
}

func invert(src gocv.Mat, dst *gocv.Mat) { gocv.BitwiseNot(src, dst) }

// resizeTo scales src so its longer side is target pixels.
func resizeTo(target int) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		long := max(src.Cols(), src.Rows())
		f := float64(target) / float64(long)
		interp := gocv.InterpolationArea
		if f > 1 {
			interp = gocv.InterpolationCubic
		}
		gocv.Resize(src, dst, image.Point{}, f, f, interp)
	}
}

func blur(k int) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		gocv.GaussianBlur(src, dst, image.Pt(k, k), 0, 0, gocv.BorderReplicate)
	}
}

func otsu(src gocv.Mat, dst *gocv.Mat) {
	b := gocv.NewMat()
	defer b.Close()
	gocv.GaussianBlur(src, &b, image.Pt(3, 3), 0, 0, gocv.BorderReplicate)
	gocv.Threshold(b, dst, 0, 255, gocv.ThresholdBinary|gocv.ThresholdOtsu)
}

func clahe(src gocv.Mat, dst *gocv.Mat) {
	c := gocv.NewCLAHEWithParams(3, image.Pt(8, 8))
	defer c.Close()
	c.Apply(src, dst)
}

// erode grows dark modules so dotted or round-module codes become solid.
func erode(k int) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		kernel := gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(k, k))
		defer kernel.Close()
		gocv.Erode(src, dst, kernel)
	}
}

// rotate turns src by deg degrees around its centre on a white canvas large
// enough to hold the whole image.
func rotate(deg float64) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		w, h := float64(src.Cols()), float64(src.Rows())
		rad := deg * math.Pi / 180
		nw := int(math.Abs(w*math.Cos(rad)) + math.Abs(h*math.Sin(rad)))
		nh := int(math.Abs(w*math.Sin(rad)) + math.Abs(h*math.Cos(rad)))
		m := gocv.GetRotationMatrix2D(image.Pt(src.Cols()/2, src.Rows()/2), deg, 1)
		defer m.Close()
		m.SetDoubleAt(0, 2, m.GetDoubleAt(0, 2)+float64(nw)/2-w/2)
		m.SetDoubleAt(1, 2, m.GetDoubleAt(1, 2)+float64(nh)/2-h/2)
		gocv.WarpAffineWithParams(src, dst, m, image.Pt(nw, nh), gocv.InterpolationLinear,
			gocv.BorderConstant, color.RGBA{255, 255, 255, 255})
	}
}

// rectified finds a QR quadrangle with OpenCV's detector (which works on
// Debian's build even though its decoder does not) and warps it to an
// upright square with a white quiet zone, for gozxing to read. Detection
// runs on a copy scaled to at most detectSide pixels: it costs ~4× less
// there and still finds codes of 2 px modules or more.
func (d *Decoder) rectified(g gocv.Mat, rs readerSet) []Symbol {
	const detectSide = 480
	f := 1.0
	det := g
	if long := max(g.Cols(), g.Rows()); long > detectSide {
		f = float64(detectSide) / float64(long)
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(g, &small, image.Point{}, f, f, gocv.InterpolationArea)
		det = small
	}
	pts := gocv.NewMat()
	defer pts.Close()
	if !d.det.Detect(det, &pts) || pts.Empty() || pts.Total() < 4 {
		return nil
	}
	quad := pointsOf(pts)
	if len(quad) < 4 {
		return nil
	}
	quad = quad[:4]
	side := 0.0
	for i := range quad {
		quad[i].X /= float32(f)
		quad[i].Y /= float32(f)
	}
	for i := range quad {
		side = max(side, dist(quad[i], quad[(i+1)%4]))
	}
	// At least ~5 px per module on a version-10 code (57 modules),
	// without blowing up huge codes.
	size := min(max(int(side), 320), 800)
	margin := float32(size) / 8
	s := float32(size)
	src := gocv.NewPoint2fVectorFromPoints(quad)
	defer src.Close()
	dst := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{
		{X: margin, Y: margin}, {X: margin + s, Y: margin},
		{X: margin + s, Y: margin + s}, {X: margin, Y: margin + s},
	})
	defer dst.Close()
	h := gocv.GetPerspectiveTransform2f(src, dst)
	defer h.Close()
	out := gocv.NewMat()
	defer out.Close()
	full := size + int(2*margin)
	gocv.WarpPerspectiveWithParams(g, &out, h, image.Pt(full, full), gocv.InterpolationCubic,
		gocv.BorderConstant, color.RGBA{255, 255, 255, 255})
	if r := d.both(out, rs); len(r) > 0 {
		return r
	}
	if r := d.derive(out, rs, sharpen(2, 1)); len(r) > 0 {
		return r
	}
	return d.derive(out, rs, blur(3))
}

func pointsOf(m gocv.Mat) []gocv.Point2f {
	if m.Type() != gocv.MatTypeCV32FC2 {
		return nil
	}
	v := gocv.NewPoint2fVectorFromMat(m)
	defer v.Close()
	return v.ToPoints()
}

func dist(a, b gocv.Point2f) float64 {
	return math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y))
}

func dedupe(in []Symbol) []Symbol {
	seen := make(map[Symbol]bool, len(in))
	out := in[:0]
	for _, s := range in {
		s = normalize(s)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// chain applies fs in order.
func chain(fs ...func(src gocv.Mat, dst *gocv.Mat)) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		cur := src.Clone()
		defer func() { cur.Close() }()
		for _, f := range fs {
			next := gocv.NewMat()
			f(cur, &next)
			cur.Close()
			cur = next
		}
		cur.CopyTo(dst)
	}
}

// pad adds a white border of frac times the longer side: tiny crops often
// have no quiet zone, and gozxing's finder needs one.
func pad(frac float64) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		b := int(frac * float64(max(src.Cols(), src.Rows())))
		gocv.CopyMakeBorder(src, dst, b, b, b, b, gocv.BorderConstant, color.RGBA{255, 255, 255, 255})
	}
}

func scale(f float64, interp gocv.InterpolationFlags) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		gocv.Resize(src, dst, image.Point{}, f, f, interp)
	}
}

// stretch scales src by fx across and fy down.
func stretch(fx, fy float64) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		gocv.Resize(src, dst, image.Point{}, fx, fy, gocv.InterpolationLinear)
	}
}

// uncurve flattens a code wrapped round a vertical cylinder (a cup, a
// curved screen) centred in src, seen theta radians round each side: the
// sides, foreshortened and farther away, are widened and heightened back.
func uncurve(theta float64) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		ow, h := float64(src.Cols()), src.Rows()
		r := ow / 2 / math.Sin(theta)
		fw := int(2 * r * theta)
		d := 4 * r * theta // camera distance: twice the flat width
		mapX := gocv.NewMatWithSize(h, fw, gocv.MatTypeCV32F)
		mapY := gocv.NewMatWithSize(h, fw, gocv.MatTypeCV32F)
		defer mapX.Close()
		defer mapY.Close()
		xs, errX := mapX.DataPtrFloat32()
		ys, errY := mapY.DataPtrFloat32()
		if errX != nil || errY != nil {
			return
		}
		cy := float64(h) / 2
		for x := range fw {
			phi := (float64(x) + 0.5 - float64(fw)/2) / r
			sx := float32(ow/2 + r*math.Sin(phi) - 0.5)
			shrink := d / (d + r*(1-math.Cos(phi)))
			for y := range h {
				xs[y*fw+x] = sx
				ys[y*fw+x] = float32(cy + (float64(y)+0.5-cy)*shrink - 0.5)
			}
		}
		gocv.Remap(src, dst, &mapX, &mapY, gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	}
}

// sharpen is an unsharp mask: src + amount·(src − blur(src, sigma)).
func sharpen(sigma, amount float64) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		b := gocv.NewMat()
		defer b.Close()
		gocv.GaussianBlur(src, &b, image.Pt(0, 0), sigma, 0, gocv.BorderReplicate)
		gocv.AddWeighted(src, 1+amount, b, -amount, 0, dst)
	}
}

// adaptive thresholds against the Gaussian-weighted local mean.
func adaptive(block int) func(src gocv.Mat, dst *gocv.Mat) {
	return func(src gocv.Mat, dst *gocv.Mat) {
		gocv.AdaptiveThreshold(src, dst, 255, gocv.AdaptiveThresholdGaussian, gocv.ThresholdBinary, block, 4)
	}
}
