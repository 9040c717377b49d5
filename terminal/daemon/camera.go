//go:build !nocamera

package daemon

import (
	"time"

	"campuspay/terminal/device"
	"campuspay/terminal/device/camera"
)

// CameraBuilt reports whether this build of terminald has the camera
// driver (OpenCV); a build with the nocamera tag does not.
const CameraBuilt = true

func openCamera(src string, onDecode func(time.Duration)) (device.Scanner, error) {
	return camera.Open(camera.Config{Source: src, OnDecode: onDecode})
}
