// Package storetest is the conformance suite of wallet stores: every
// wallet.Store method (and the app API's idempotency records), run against
// wallet/sqlite and wallet/postgres alike, including concurrent writers
// and — for a store that several authorizer processes share — writers in
// several Stores on one database.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{Open: ...})
//	}
package storetest

import (
	"context"
	"testing"
	"time"

	"campuspay/server/operator"
	"campuspay/server/wallet"
)

// Store is what a wallet store offers the authorizer: wallet.Store, the
// API's idempotency records (api.IdempotencyStore) and sessions, and the
// back office's operators and audit log (operator.Store).
type Store interface {
	wallet.Store
	operator.Store
	APIResponse(ctx context.Context, user uint32, key string) (*wallet.APIResponse, error)
	PutAPIResponse(ctx context.Context, user uint32, key string, r wallet.APIResponse, at time.Time) error
	PutSession(ctx context.Context, tokenHash string, user uint32, expires, now time.Time) error
	Session(ctx context.Context, tokenHash string, now time.Time) (uint32, bool, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	DeleteUserSessions(ctx context.Context, user uint32, keep string) error
}

// Factory makes the stores under test.
type Factory struct {
	// Open returns a Store on a fresh, empty database (closed by the
	// suite or when t ends) and a function that opens another Store on
	// the same database.
	Open func(t *testing.T) (s Store, again func(t *testing.T) Store)
	// Shared: several Stores may be open on one database at once (several
	// authorizer processes); without it, again is only called after the
	// first Store is closed.
	Shared bool
}

var ctx = context.Background()

// t0 is a fixed business time, so that no test depends on the clock.
var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("UsersSurviveReopen", func(t *testing.T) { testUsers(t, f) })
	t.Run("Lookups", func(t *testing.T) { testLookups(t, f) })
	t.Run("PersonalDataRoundTrip", func(t *testing.T) { testPersonalData(t, f) })
	t.Run("RecordPutAgainByKey", func(t *testing.T) { testRecordPutAgainByKey(t, f) })
	t.Run("Devices", func(t *testing.T) { testDevices(t, f) })
	t.Run("LostCards", func(t *testing.T) { testLostCards(t, f) })
	t.Run("MerchantsAndTerminals", func(t *testing.T) { testMerchants(t, f) })
	t.Run("SeenCodes", func(t *testing.T) { testSeenCodes(t, f) })
	t.Run("RecordsAndCursor", func(t *testing.T) { testRecords(t, f) })
	t.Run("RecordUpdate", func(t *testing.T) { testRecordUpdate(t, f) })
	t.Run("FinishRecord", func(t *testing.T) { testFinishRecord(t, f) })
	t.Run("Unfinished", func(t *testing.T) { testUnfinished(t, f) })
	t.Run("PaidBetweenUnsettledClearWeChat", func(t *testing.T) { testPaidBetween(t, f) })
	t.Run("IntentDailyLimit", func(t *testing.T) { testIntentLimit(t, f) })
	t.Run("OfflineDailyTotal", func(t *testing.T) { testOfflineDailyTotal(t, f) })
	t.Run("RevisionAndJournal", func(t *testing.T) { testRevision(t, f) })
	t.Run("APIResponses", func(t *testing.T) { testAPIResponses(t, f) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, f) })
	t.Run("LoginFails", func(t *testing.T) { testLoginFails(t, f) })
	t.Run("LoginFailsConcurrent", func(t *testing.T) { testLoginFailsConcurrent(t, f) })
	t.Run("PagesRecordsBetweenLitresNames", func(t *testing.T) { testPages(t, f) })
	t.Run("Allowances", func(t *testing.T) { testAllowances(t, f) })
	t.Run("BackOfficeUsers", func(t *testing.T) { testBackOfficeUsers(t, f) })
	t.Run("Operators", func(t *testing.T) { testOperators(t, f) })
	t.Run("OperatorSessions", func(t *testing.T) { testOperatorSessions(t, f) })
	t.Run("AuditLog", func(t *testing.T) { testAuditLog(t, f) })
	t.Run("ConcurrentWrites", func(t *testing.T) { testConcurrent(t, f) })
	if f.Shared {
		t.Run("SharedCodeOneOwner", func(t *testing.T) { testSharedCodes(t, f) })
		t.Run("SharedCursorsAndCounters", func(t *testing.T) { testSharedCursors(t, f) })
		t.Run("SharedDailyLimit", func(t *testing.T) { testSharedDailyLimit(t, f) })
	}
}

// open opens a fresh store, closed when t ends.
func open(t *testing.T, f Factory) (Store, func(t *testing.T) Store) {
	t.Helper()
	s, again := f.Open(t)
	t.Cleanup(func() { s.Close() })
	return s, func(t *testing.T) Store {
		t.Helper()
		s2 := again(t)
		t.Cleanup(func() { s2.Close() })
		return s2
	}
}
