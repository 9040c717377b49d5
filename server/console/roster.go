package console

import (
	"net/http"
	"strings"
)

// MaxUpload bounds an uploaded roster (CSV).
const MaxUpload = 8 << 20

// isUpload reports whether r carries a roster file rather than JSON.
func isUpload(r *http.Request) bool { return strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") }
