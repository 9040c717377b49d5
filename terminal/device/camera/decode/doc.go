// Package decode reads QR codes and Code128 barcodes from camera frames:
// gozxing, fed straight from a gray gocv.Mat's buffer
// (gozxing.NewPlanarYUVLuminanceSource, no image.Image copy), behind a
// staged pipeline of OpenCV pre-processing that reads far more than plain
// gozxing does.
//
// # Pipeline
//
// Stages run in order until one reads something (Stages lists them):
// gozxing on the frame as is (HybridBinarizer, QR + Code128 with
// TRY_HARDER, and the multi-QR reader when the single one finds nothing:
// alone, the single reader misses ~2 % of perfectly drawn wallet codes,
// TestFirstStageReadsEveryCode; it costs an idle frame ~1.1× plain gozxing,
// BenchmarkIdleFrame); global histogram binarizer and the multi-QR reader; unsharp masking
// (defocus); Gaussian blur (moiré, JPEG blocks); inversion (dark mode —
// gozxing ignores ALSO_INVERTED); OpenCV's QRCodeDetector quadrangle
// rectified to an upright square (it detects on Debian's OpenCV though it
// cannot decode there: no quirc); upscale+sharpen; strong sharpen;
// adaptive and Otsu thresholds; upscale of small images; downscale of
// large ones; CLAHE; erosion (round or dotted modules); ±15° rotation.
// Fallback stages run QR readers only: Code128 with TRY_HARDER is the
// dearest reader and barcodes are read by the first two stages.
//
// A Budget bounds each call for a live camera; the next call resumes the
// fallback stages where the last stopped, so a phone held for a few frames
// meets every stage. Optionally (Options.WeChat) OpenCV's wechat_qrcode
// (package wechat, a binding of our own) runs as the last stage.
//
// # Measured
//
// On zxing-cpp's sample sets (testdata/zxing-cpp-samples), TestSampleCounts
// (these are its floors):
//
//	set        plain gozxing  pipeline  pipeline+wechat  zxing-cpp
//	qrcode-1        6/8          8/8          8/8           8/8
//	qrcode-2       33/56        49/56        51/56         53/56
//	qrcode-3       11/18        16/18        16/18         18/18
//	code128-1       5/6          6/6          6/6           6/6
//
// Plain gozxing reads 33 of qrcode-2 here (FACTS quotes 34–36 measured
// through image.Image; OpenCV's WebP/JPEG decoding gives slightly
// different pixels). The code128 gain is Latin-1 text: gozxing returns
// FNC4 extended characters as raw bytes, the pipeline converts them. Still
// missed: QR Model 1, a 41×41 code with one pixel per module, a 100×99 crop
// with no quiet zone, a bent 177×177 code, an extreme-perspective code, a
// double-QR's inner symbol (the outer one is read), two blurred tilted
// photos. gocv.IMRead reads the .webp files on Debian's OpenCV 4.6.
//
// On hwsim's virtual camera (640×480, a phone showing a 280-character
// alphanumeric wallet code at EC M, code 288 px tall ≈ 4.4 px per module),
// TestVirtualCameraLimits, frames read of 4:
//
//	scene                                         plain  pipeline
//	defocus σ2.0 / σ2.2 / σ2.5 px                 1/0/0   4/4/3
//	tilt 35° / 45°                                  0/0    4/1
//	noise σ20 + glare 0.8                            4      4
//	screen moiré 0.6 + roll 7°                       0      4
//	moiré + blur 1 + tilt 20° + noise + glare        1      4
//	code 2 px per module                             2      3
//	blur 1.5 + tilt 30°                              0      4
//	blur 1.5 + tilt 30° + roll 20° + noise + glare   0      3
//	blur 2 + tilt 35° + noise 10 + glare             0      0
//
// wechat_qrcode without its CNN models read 17 of 24 hard virtual-camera
// frames where the pipeline read 21 and the two together 23, but it costs
// 20–90 ms per frame, and 0.2–0.6 s on noisy frames even when nothing is
// there, and cannot be interrupted: hence off by default.
//
// Time per 640×480 frame on this 2-core machine (noisy, shared): plain
// gozxing 1–10 ms; a frame read by the first stages about the same; a
// frame where every stage fails ~100–150 ms (bounded per call by Budget).
// `make bench` (BenchmarkDecode) prints decode rates, time per image and
// the pipeline's ratios to plain gozxing on the same images.
//
// # What a wallet code needs
//
// A 280-character payload in QR alphanumeric mode (base45: 0-9 A-Z space
// $%*+-./:, prefix "CW1:") needs version 8 at EC L (49×49 modules),
// version 10 at EC M (57×57), 12 at Q, 14 at H. One lowercase letter
// forces byte mode: version 12 at M (65×65). At EC M a version-10 code
// shown 288 px tall on a 640×480 frame is ~4.4 px per module with its
// quiet zone; the pipeline reads it through σ2.2 px defocus or 35° of
// tilt, and down to ~2 px per module when sharp.
package decode
