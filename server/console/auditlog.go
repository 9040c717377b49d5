package console

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"campuspay/protocol"
	"campuspay/server/operator"
)

// staff are the card centre's roles: they read the audit log.
var staff = []operator.Role{operator.RoleAdmin, operator.RoleHelpdesk, operator.RoleFinance}

func init() {
	addRoutes(Route{"GET", "/audit", staff, (*Console).auditLog})
}

// maxSearch bounds a search text (in characters).
const maxSearch = 64

// searchText checks a search text: 1..maxSearch characters of valid UTF-8
// (required) or empty (allowed when !required).
func searchText(s string, required bool) (string, error) {
	if (s == "" && !required) || (s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= maxSearch) {
		return s, nil
	}
	return "", protocol.ErrSearchInvalid
}

func (c *Console) auditLog(r *Request) (any, error) {
	q := r.URL.Query()
	var aq operator.AuditQuery
	var err error
	for _, f := range []struct {
		dst *string
		key string
	}{{&aq.Text, "q"}, {&aq.Operator, "operator"}, {&aq.Action, "action"}, {&aq.Target, "target"}} {
		if *f.dst, err = searchText(q.Get(f.key), false); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		dst *int64
		key string
	}{{&aq.BeforeID, "before"}} {
		if v := q.Get(f.key); v != "" {
			if *f.dst, err = strconv.ParseInt(v, 10, 64); err != nil || *f.dst < 0 {
				return nil, fmt.Errorf("%w: %s", protocol.ErrBadRequest, f.key)
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		if aq.Limit, err = strconv.Atoi(v); err != nil || aq.Limit < 1 || aq.Limit > operator.MaxAuditLimit {
			return nil, fmt.Errorf("%w: limit", protocol.ErrBadRequest)
		}
	}
	es, err := c.st.AuditLog(r.Context(), aq)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if es == nil {
		es = []operator.AuditEntry{}
	}
	return map[string]any{"entries": es}, nil
}
