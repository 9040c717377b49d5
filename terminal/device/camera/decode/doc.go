// Package decode reads QR codes and Code128 barcodes from camera frames:
// gozxing, fed straight from a gray gocv.Mat's buffer
// (gozxing.NewPlanarYUVLuminanceSource, no image.Image copy), behind a
// staged pipeline of OpenCV pre-processing that reads far more than plain
// gozxing does.
//
// # Pipeline
//
// Decode returns every code it finds in a frame:
//
//  1. The first stage: gozxing on the frame as is (HybridBinarizer, QR +
//     Code128 with TRY_HARDER, and the multi-QR reader when the single one
//     finds nothing: alone, the single reader misses ~2 % of perfectly
//     drawn wallet codes, TestFirstStageReadsEveryCode). A frame larger
//     than 1280 px meets it downscaled to 1024 px (a 12-megapixel photo
//     whole costs hundreds of milliseconds; a close-up's huge modules
//     become ordinary ones).
//  2. Candidate regions (regions.go): on a 320-px thumbnail and one a
//     third of that, areas dense with edges across both axes — a code's
//     modules, not a phone's bezel or a table edge. A frame with none (an
//     empty counter) ends here: an idle frame costs about as much as plain
//     gozxing (BenchmarkIdleFrame).
//  3. Every region that holds no code read so far — the previous frame's
//     successful region first — is cropped and scaled so its long side is
//     240–640 px, and meets the first stage and then the fallback stages
//     while the budget lasts. So a close-up's modules, a distant code's
//     small ones and a code in a 12-megapixel photo are all read at a size
//     gozxing likes, and a merchant's sharp printed QR does not hide the
//     student's blurred phone beside it: both are returned. When regions
//     exist but none is most of the frame, the whole frame is the last
//     candidate.
//
// Fallback stages (stages.go, ordered by codes read per millisecond on the
// photo set's crops): sharpen+Otsu, Otsu, Gaussian blur (moiré, JPEG
// blocks), inversion (dark mode — gozxing ignores ALSO_INVERTED), a 1.6×
// horizontal stretch (a code turned away from the camera: gozxing's finder
// check wants square finder patterns), a cylinder unwrap at two curvatures
// (codes on cups and curved screens), unsharp masking (defocus), adaptive
// threshold, global histogram binarizer + multi-QR, upscale+sharpen,
// OpenCV's QRCodeDetector quadrangle rectified to an upright square (it
// detects on Debian's OpenCV though it cannot decode there: no quirc),
// ±15° rotation, upscale of small images, strong sharpen, vertical
// stretch, erosion (round or dotted modules), CLAHE, downscale. Fallback
// stages run QR readers only (Code128 with TRY_HARDER is the dearest
// reader; barcodes are read by the first stage and global+multi).
//
// A Budget bounds each call for a live camera: the first stage, the
// regions and, in the first candidate region, its first stage and one
// fallback always run; further ones start only while the budget lasts.
// The next call resumes the fallback stages where the last stopped, so a
// phone held for a few frames meets every stage. Optionally
// (Options.WeChat) OpenCV's wechat_qrcode (package wechat, a binding of
// our own) runs as the last stage.
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
// The real-photo-like set (photos_test.go, made at test time, nothing
// committed): 8 images in each of 9 categories, phones showing real wallet
// payment codes (protocol.MakeCode) or codes made by qrencode (other
// payloads, EC L to H), filmed by hwsim's virtual camera at 640×480 to
// 4000×3000 (12 megapixels) and JPEG-compressed; "multi" adds a
// merchant's printed QR beside the phone, "idle" shows no code. Images
// with a code read (TestPhotoCounts; no decoder misread anything; "1
// call" is what one Decode call always runs, i.e. what the
// terminal reads within its default 80 ms budget in a single frame):
//
//	category     plain  pipeline  1 call  zxing-cpp 1.4 (Debian ZXingReader)
//	closeup        6       8        8       8
//	blur           0       4        2       2
//	perspective    0       7        2       8
//	curved         3       8        5       4
//	moire          0       8        8       2
//	glare          8       8        8       8
//	small          1       7        4       5
//	multi          4       8        5       8   (both codes: pipeline 8, zxing-cpp 4)
//	idle           0       0        0       0
//	total         22      58       41      45   of 64
//
// Time (BenchmarkPhotos, `make bench`, noisy shared 2-core machine): with
// the default budget the pipeline spends 11–60 ms per photo (close-ups
// 27 ms, plain gozxing 34 ms on the same 0.3–8 megapixel frames: the
// downscale pays for itself); an idle frame 17 ms where the pipeline
// before regions spent 94 ms (BenchmarkIdleFrame: time_x_before 0.18,
// time_x_plain 1.1).
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
