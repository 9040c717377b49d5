//go:build nocamera

package daemon

import (
	"strings"
	"testing"
)

// In the camera-less build the camera driver is refused with a message
// that says which build to install, and nothing of OpenCV is linked.
func TestNoCameraBuild(t *testing.T) {
	if CameraBuilt {
		t.Fatal("CameraBuilt in a nocamera build")
	}
	_, err := openScanner(&DeviceConfig{Driver: "camera", Source: "0"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "nocamera") {
		t.Fatalf("camera in a nocamera build: %v", err)
	}
}
