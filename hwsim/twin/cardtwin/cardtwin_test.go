package cardtwin

import (
	"bytes"
	"testing"
)

// The twin's encoders against datasheet vectors, independent of the driver.
func TestPN532Vectors(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		// GetFirmwareVersion response from UM0701-02: PN532 1.6.
		{"firmware", pnFrame(0x03, 0x32, 0x01, 0x06, 0x07), []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}},
		{"SAMConfiguration response", pnFrame(0x15), []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00}},
		{"no target", pnFrame(0x4B, 0x00), []byte{0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD5, 0x4B, 0x00, 0xE0, 0x00}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % X, want % X", tc.name, tc.got, tc.want)
		}
	}
}

func TestRDM6300Frame(t *testing.T) {
	f, err := RDM6300Frame("62E3086CED")
	if err != nil {
		t.Fatal(err)
	}
	// 62^E3^08^6C^ED = 08
	if want := append(append([]byte{0x02}, "62E3086CED08"...), 0x03); !bytes.Equal(f, want) {
		t.Fatalf("% X, want % X", f, want)
	}
	for _, bad := range []string{"", "62E3086C", "62E3086CEDFF", "ZZE3086CED"} {
		if _, err := RDM6300Frame(bad); err == nil {
			t.Errorf("RDM6300Frame(%q) accepted", bad)
		}
	}
}

func TestParseUID(t *testing.T) {
	for _, ok := range []string{"DEADBEEF", "04:A2:B3:C4:D5:E6:F7", "0102030405060708090a"} {
		if _, err := parseUID(ok); err != nil {
			t.Errorf("parseUID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "DEAD", "DEADBEEF00", "XYZ"} {
		if _, err := parseUID(bad); err == nil {
			t.Errorf("parseUID(%q) accepted", bad)
		}
	}
}
