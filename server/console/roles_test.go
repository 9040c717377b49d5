package console_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"campuspay/server/console"
	"campuspay/server/operator"
	"campuspay/server/wallet/wallettest"
)

// TestRoles sends every route as every role: a role not listed for the
// route is refused FORBIDDEN (403) and nothing happens; a listed role gets
// past the check (whatever the handler then says of the empty request).
// Path wildcards are filled with the merchant manager's own objects, so
// that the merchant-bound check does not hide the role check.
func TestRoles(t *testing.T) {
	r := newRig(t, console.Options{})
	s := r.env.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 100_00})
	names := map[operator.Role]string{}
	for _, role := range operator.Roles() {
		name := "op-" + role.String()
		m := ""
		if role == operator.RoleMerchant {
			m = wallettest.Merchant
		}
		r.addOperator(name, role, m, false)
		names[role] = name
	}
	fill := strings.NewReplacer("{no}", s.No, "{terminal}", wallettest.POS, "{merchant}", wallettest.Merchant,
		"{device}", "1", "{uid}", s.CardUID, "{id}", "1", "{day}", "2026-11-30", "{name}", "op-admin")
	routes := console.RouteRoles()
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sessions := map[operator.Role]*client{}
	for _, key := range keys {
		method, path, _ := strings.Cut(key, " ")
		path = fill.Replace(strings.TrimPrefix(path, console.APIPrefix))
		if path == "/login" {
			continue
		}
		for _, role := range operator.Roles() {
			t.Run(fmt.Sprintf("%s/%s", role, key), func(t *testing.T) {
				c := sessions[role]
				if c == nil || path == "/logout" {
					c = r.login(names[role])
					sessions[role] = c
				}
				var body any
				if method != "GET" {
					body = map[string]any{}
				}
				before := len(r.audit(operator.AuditQuery{Limit: 500}))
				var e struct{ Code string }
				st, raw := c.raw(method, path, body, map[string]string{"X-CSRF-Token": c.csrf})
				json.Unmarshal(raw, &e) // a CSV or PNG answer is not JSON: no code
				allowed := slices.Contains(routes[key], role)
				if !allowed && (st != 403 || e.Code != "FORBIDDEN") {
					t.Errorf("not allowed: %d %s, want 403 FORBIDDEN", st, e.Code)
				}
				if allowed && e.Code == "FORBIDDEN" {
					t.Errorf("allowed but refused FORBIDDEN")
				}
				if !allowed {
					if after := len(r.audit(operator.AuditQuery{Limit: 500})); after != before {
						t.Errorf("a refused request wrote %d audit entries", after-before)
					}
				}
				if path == "/logout" {
					delete(sessions, role)
				}
			})
		}
	}
}
