//go:build nocamera

package daemon

import (
	"errors"
	"time"

	"campuspay/terminal/device"
)

// CameraBuilt reports whether this build of terminald has the camera
// driver. This one (the nocamera tag) links no OpenCV at all, so a
// card-tap or shower box does not map OpenCV's ~260 shared libraries.
const CameraBuilt = false

func openCamera(string, func(time.Duration)) (device.Scanner, error) {
	return nil, errors.New("camera: this terminald was built without camera support (-tags nocamera); install the camera build on a box with a camera")
}
