package console_test

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/console"
	"campuspay/server/operator"
)

func TestLoginLogout(t *testing.T) {
	r := newRig(t, console.Options{SessionTTL: time.Hour})
	r.addOperator("zhang.desk", operator.RoleHelpdesk, "", false)
	anon := r.client()
	anon.want(401, "UNAUTHORIZED", "GET", "/me", nil)
	for _, b := range []map[string]string{
		{"name": "zhang.desk", "password": "wrong password"},
		{"name": "nobody", "password": password},
		{"name": "", "password": ""},
		{"name": "zhang.desk' OR '1'='1", "password": password},
	} {
		anon.want(401, "OPERATOR_LOGIN_FAILED", "POST", "/login", b)
	}
	anon.want(400, "BAD_REQUEST", "POST", "/login", map[string]any{"name": "zhang.desk", "password": password, "admin": true})

	c := r.login("zhang.desk")
	var me struct {
		Operator struct{ Name, Role string }
		CSRF     string
		Expires  time.Time
	}
	if st := c.do("GET", "/me", nil, &me); st != 200 || me.Operator.Name != "zhang.desk" || me.Operator.Role != "helpdesk" ||
		me.CSRF != c.csrf || !me.Expires.Equal(wallettestT0().Add(time.Hour)) {
		t.Fatalf("me: %d %+v", st, me)
	}
	if st := c.do("POST", "/logout", nil, nil); st != 200 {
		t.Fatalf("logout: %d", st)
	}
	// The cookie, replayed after logout, is refused.
	c.want(401, "UNAUTHORIZED", "GET", "/me", nil)
	c.want(401, "UNAUTHORIZED", "GET", "/audit", nil)

	// Sessions expire.
	c = r.login("zhang.desk")
	r.env.Clock.Advance(time.Hour)
	c.want(401, "UNAUTHORIZED", "GET", "/me", nil)

	// Logins and failures are in the audit log.
	if es := r.audit(operator.AuditQuery{Action: "login.fail"}); len(es) != 4 || es[3].Name != "zhang.desk" || es[3].Reason != "wrong password" || es[2].Operator != 0 {
		t.Fatalf("failures logged: %+v", es)
	}
	if es := r.audit(operator.AuditQuery{Action: "login.ok"}); len(es) != 2 || es[0].Remote != "127.0.0.1" {
		t.Fatalf("logins logged: %+v", es)
	}
	if es := r.audit(operator.AuditQuery{Action: "logout"}); len(es) != 1 {
		t.Fatalf("logout logged: %+v", es)
	}
}

func wallettestT0() time.Time {
	return time.Date(2026, 11, 30, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
}

func TestLoginLockout(t *testing.T) {
	r := newRig(t, console.Options{})
	r.addOperator("li.fin", operator.RoleFinance, "", false)
	c := r.client()
	for i := range 5 {
		code := "OPERATOR_LOGIN_FAILED"
		if i == 4 {
			code = "OPERATOR_LOGIN_LOCKED"
		}
		c.want(map[bool]int{true: 423, false: 401}[i == 4], code, "POST", "/login", map[string]string{"name": "li.fin", "password": "guess" + string(rune('a'+i))})
	}
	// Locked even with the right password, until the lock ends.
	c.want(423, "OPERATOR_LOGIN_LOCKED", "POST", "/login", map[string]string{"name": "li.fin", "password": password})
	r.env.Clock.Advance(15 * time.Minute)
	r.login("li.fin")
}

func TestTOTPLogin(t *testing.T) {
	r := newRig(t, console.Options{})
	secret := r.addOperator("admin", operator.RoleAdmin, "", true)
	if len(secret) != operator.TOTPSecretSize {
		t.Fatalf("secret %x", secret)
	}
	c := r.client()
	now := r.env.Clock.Now()
	code := operator.TOTPCode(secret, operator.TOTPStepAt(now))
	c.want(401, "OPERATOR_LOGIN_FAILED", "POST", "/login", map[string]string{"name": "admin", "password": password})
	c.want(401, "OPERATOR_LOGIN_FAILED", "POST", "/login", map[string]string{"name": "admin", "password": password, "totp": "000000"})
	if st := c.do("POST", "/login", map[string]string{"name": "admin", "password": password, "totp": code}, nil); st != 200 {
		t.Fatalf("login with code: %d", st)
	}
	// The same code is good once.
	r.client().want(401, "OPERATOR_LOGIN_FAILED", "POST", "/login", map[string]string{"name": "admin", "password": password, "totp": code})
	r.env.Clock.Advance(operator.TOTPStep)
	next := operator.TOTPCode(secret, operator.TOTPStepAt(r.env.Clock.Now()))
	if st := r.client().do("POST", "/login", map[string]string{"name": "admin", "password": password, "totp": next}, nil); st != 200 {
		t.Fatalf("next code: %d", st)
	}
}

func TestCSRF(t *testing.T) {
	r := newRig(t, console.Options{})
	r.addOperator("zhang.desk", operator.RoleHelpdesk, "", false)
	c := r.login("zhang.desk")
	for _, h := range []map[string]string{
		nil,                            // missing
		{"X-CSRF-Token": "forged"},     // wrong
		{"X-CSRF-Token": c.csrf + "x"}, // altered
	} {
		st, b := c.raw("POST", "/logout", nil, h)
		var e protocol.Reason
		json.Unmarshal(b, &e)
		if st != 403 || e.Code != "CSRF_INVALID" {
			t.Errorf("headers %v: %d %s", h, st, b)
		}
	}
	// A form post (what another site could make a browser send) is refused
	// before anything else.
	st, _ := c.raw("POST", "/logout", []byte("a=b"), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": c.csrf})
	if st != 400 {
		t.Errorf("form post: %d", st)
	}
	// The session is still alive: nothing above logged it out.
	if st := c.do("GET", "/me", nil, nil); st != 200 {
		t.Fatalf("me: %d", st)
	}
	// Another session's token is not this one's.
	other := r.login("zhang.desk")
	st, _ = c.raw("POST", "/logout", nil, map[string]string{"X-CSRF-Token": other.csrf})
	if st != 403 {
		t.Fatalf("other session's token: %d", st)
	}
}

// TestOpenAPI checks that every console route is documented in
// openapi.yaml with the roles it allows, and every documented route exists.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Description string `json:"description"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var documented []string
	roles := console.RouteRoles()
	for p, ops := range doc.Paths {
		for m, op := range ops {
			key := strings.ToUpper(m) + " " + p
			documented = append(documented, key)
			for _, role := range roles[key] {
				if key != "POST /console/api/v1/login" && !strings.Contains(op.Description, role.String()) && !strings.Contains(op.Description, "any role") {
					t.Errorf("%s: description does not name role %s", key, role)
				}
			}
		}
	}
	routes := console.Routes()
	sort.Strings(documented)
	sort.Strings(routes)
	if !slices.Equal(documented, routes) {
		t.Fatalf("documented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(routes, "\n"))
	}
}
