// Package wechat is a minimal cgo binding to OpenCV's wechat_qrcode module
// (libopencv-contrib, OpenCV 4.6 on Debian), used as a second QR decoder
// beside gozxing. gocv's own contrib binding does not build against
// Debian's OpenCV, so this package binds the one call it needs.
//
// The detector runs without its optional CNN model files: OpenCV then uses
// its traditional finder-pattern detector and the ZXing-derived decoder
// with WeChat's binarizers, which reads blurred and tilted codes that
// gozxing misses. Texts containing NUL bytes are cut at the first NUL.
package wechat

/*
#cgo pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "wechat.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
)

// Detector wraps one cv::wechat_qrcode::WeChatQRCode. It is safe for
// concurrent use (calls are serialised).
type Detector struct {
	mu sync.Mutex
	p  C.WeChatQR
}

// New returns a Detector; Close it when done.
func New() (*Detector, error) {
	p := C.WeChatQR_New()
	if p == nil {
		return nil, errors.New("wechat: create detector failed")
	}
	return &Detector{p: p}, nil
}

// Close releases the detector. It is idempotent.
func (d *Detector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p != nil {
		C.WeChatQR_Close(d.p)
		d.p = nil
	}
	return nil
}

// Decode returns the texts of the QR codes found in m, an 8-bit gray
// (CV8UC1) or BGR (CV8UC3) Mat. The Mat must stay alive during the call.
func (d *Detector) Decode(m gocv.Mat) ([]string, error) {
	if m.Empty() {
		return nil, errors.New("wechat: empty image")
	}
	ch := 0
	switch m.Type() {
	case gocv.MatTypeCV8UC1:
		ch = 1
	case gocv.MatTypeCV8UC3:
		ch = 3
	default:
		return nil, fmt.Errorf("wechat: unsupported Mat type %v", m.Type())
	}
	if !m.IsContinuous() {
		return nil, errors.New("wechat: Mat not continuous")
	}
	buf, err := m.DataPtrUint8()
	if err != nil || len(buf) == 0 {
		return nil, fmt.Errorf("wechat: Mat data: %v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		return nil, errors.New("wechat: detector closed")
	}
	var out *C.char
	var outLen C.int
	// buf points into the Mat's C memory, not Go memory: passing it is
	// allowed by the cgo pointer rules.
	n := C.WeChatQR_Decode(d.p, (*C.uchar)(unsafe.Pointer(&buf[0])), C.int(m.Rows()), C.int(m.Cols()),
		C.int(ch), C.long(m.Step()), &out, &outLen)
	if out != nil {
		defer C.free(unsafe.Pointer(out))
	}
	if n < 0 {
		return nil, errors.New("wechat: OpenCV exception in detectAndDecode")
	}
	if n == 0 {
		return nil, nil
	}
	raw := C.GoBytes(unsafe.Pointer(out), outLen)
	texts := make([]string, 0, int(n))
	for _, t := range bytes.Split(bytes.TrimSuffix(raw, []byte{0}), []byte{0}) {
		texts = append(texts, string(t))
	}
	return texts, nil
}
